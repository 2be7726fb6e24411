package tunnel

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"

	"github.com/mynetwork/mynetwork/internal/packet"
)

// Flow queueing on a peer's queue: the scheduler of FQ-CoDel (RFC 8290).
//
// CoDel alone keeps a bulk transfer's queue from standing, but what it
// leaves still sits in front of everything else bound for the same peer:
// an ssh keystroke or a DNS query waits behind every packet of a copy that
// was queued before it. Each peer's queue is therefore split by flow (a
// hash of addresses, protocol and ports) into fqFlows queues, each with
// its own CoDel, served by deficit round robin in quanta of fqQuantum
// bytes. A flow whose queue was empty starts on the new list, served before
// every flow that has been sending for a while (the old list), so a flow
// that sends little (interactive, DNS, ping, the first packets of a
// connection) does not wait behind a bulk one. When the peer's queue is
// full, packets are dropped from the flow with the most bytes queued, not
// from whichever flow sent last.
const (
	fqFlows   = 256
	fqQuantum = 8 << 10 // bytes per round: a super-packet spends several
)

// flow is one flow's queue: packets linked through packet.next.
type flow struct {
	head, tail *pbuf
	bytes      int
	credit     int
	list       *flowList // the list it is on, or nil
	next       *flow     // on that list
	aqm        codel
}

type flowList struct{ head, tail *flow }

func (l *flowList) push(f *flow) {
	f.list, f.next = l, nil
	if l.tail == nil {
		l.head = f
	} else {
		l.tail.next = f
	}
	l.tail = f
}

func (l *flowList) pop() *flow {
	f := l.head
	l.head = f.next
	if l.head == nil {
		l.tail = nil
	}
	f.list, f.next = nil, nil
	return f
}

// fq is a peer's queue. Any goroutine may add; one (the peer's sendLoop)
// takes.
type fq struct {
	mu           sync.Mutex
	flows        []flow // made on the first packet
	newer, older flowList
	packets      int
	bytes        int64 // of packets: what the scheduler shares out
	mem          int64 // of their buffers: what the queue holds (queueMem)
	seed         maphash.Seed
	ready        chan struct{} // a token after each add: the taker waits on it
	stats        *PeerCounters // counts CoDel's drops and marks, and a full queue's drops
	put          func(*pbuf)   // returns a dropped packet's buffer
	sojourn      time.Duration // the wait of the last packet taken; the taker's alone
}

func newFQ(stats *PeerCounters, put func(*pbuf)) *fq {
	return &fq{seed: maphash.MakeSeed(), ready: make(chan struct{}, 1), stats: stats, put: put}
}

// add queues pk, whose enq is set. When that makes the queue longer than
// queueSlots packets or its buffers larger than queueMem, packets are
// dropped from the head of the flow with the most bytes queued until it
// fits again.
func (q *fq) add(pk *pbuf) {
	h := q.flowHash(pk.data())
	q.mu.Lock()
	if q.flows == nil {
		q.flows = make([]flow, fqFlows)
	}
	f := &q.flows[h%fqFlows]
	if f.tail == nil {
		f.head = pk
	} else {
		f.tail.next = pk
	}
	f.tail, pk.next = pk, nil
	f.bytes += pk.n
	q.packets++
	q.bytes += int64(pk.n)
	q.mem += int64(len(pk.buf))
	if f.list == nil {
		f.credit = fqQuantum
		q.newer.push(f)
	}
	for q.packets > queueSlots || q.mem > queueMem {
		q.dropFattest()
	}
	q.mu.Unlock()
	select { // wake the send loop, unless a wake-up is pending already
	case q.ready <- struct{}{}:
	default:
	}
}

// dropFattest drops the head packet of the flow with the most bytes.
func (q *fq) dropFattest() {
	fat := &q.flows[0]
	for i := range q.flows {
		if q.flows[i].bytes > fat.bytes {
			fat = &q.flows[i]
		}
	}
	q.put(q.pop(fat))
	q.stats.DropQueue.Add(1)
}

func (q *fq) pop(f *flow) *pbuf {
	pk := f.head
	f.head = pk.next
	if f.head == nil {
		f.tail = nil
	}
	pk.next = nil
	f.bytes -= pk.n
	q.packets--
	q.bytes -= int64(pk.n)
	q.mem -= int64(len(pk.buf))
	return pk
}

// take returns the next packet to send, or nil when the queue is empty.
// now is the time since the packets' enq times count; packets CoDel drops
// on the way are counted and their buffers returned.
func (q *fq) take(now time.Duration) *pbuf { return q.takeFrom(now, false) }

// takeNew is take from the new flows only (those that had nothing queued
// when their packet came: a ping, a DNS query, a keystroke), or nil: what
// a send loop may still send while its gate holds the bulk back.
func (q *fq) takeNew(now time.Duration) *pbuf { return q.takeFrom(now, true) }

func (q *fq) takeFrom(now time.Duration, newOnly bool) *pbuf {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		l := &q.newer
		if l.head == nil {
			l = &q.older
			if l.head == nil || newOnly {
				return nil
			}
		}
		f := l.head
		if f.credit <= 0 {
			f.credit += fqQuantum
			q.older.push(l.pop())
			continue
		}
		if f.head == nil {
			// Empty: a new flow goes behind the old ones once, so that a
			// flow cannot stay new by sending one packet per round.
			l.pop()
			if l == &q.newer && q.older.head != nil {
				q.older.push(f)
			}
			continue
		}
		pk := q.pop(f)
		if f.aqm.drop(now, now-pk.enq, int64(f.bytes)) {
			// A packet whose sender understands ECN is marked
			// Congestion Experienced instead (RFC 8289, 5.4): the
			// sender slows down as for a drop, with nothing to resend.
			if packet.MarkCE(pk.data()) {
				q.stats.MarkDelay.Add(1)
			} else {
				q.put(pk)
				q.stats.DropDelay.Add(1)
				continue
			}
		}
		f.credit -= pk.n
		q.sojourn = now - pk.enq
		return pk
	}
}

// len is the number of packets and bytes queued.
func (q *fq) len() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.packets, q.bytes
}

// flowHash hashes what tells an IP packet's flow apart: addresses,
// protocol and, for TCP and UDP, ports. Anything else hashes as one flow.
func (q *fq) flowHash(p []byte) uint64 {
	var key []byte
	var proto byte
	var l4 []byte
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		ihl := int(p[0]&0x0F) * 4
		key, proto = p[12:20], p[9]
		// Only the first fragment has the ports.
		if frag := binary.BigEndian.Uint16(p[6:8]) & 0x1FFF; frag == 0 && ihl >= 20 && len(p) >= ihl+4 {
			l4 = p[ihl : ihl+4]
		}
	case len(p) >= 40 && p[0]>>4 == 6:
		key, proto = p[8:40], p[6]
		if len(p) >= 44 {
			l4 = p[40:44]
		}
	default:
		return 0
	}
	var buf [40]byte
	n := copy(buf[:], key)
	buf[n] = proto
	n++
	if proto == 6 || proto == 17 {
		n += copy(buf[n:], l4)
	}
	return maphash.Bytes(q.seed, buf[:n])
}
