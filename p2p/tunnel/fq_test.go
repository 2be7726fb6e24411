package tunnel

import (
	"encoding/binary"
	"hash/maphash"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
)

// fqRig is a flow queue with counted drops and packets made from IPv4
// headers with the given protocol and source port.
type fqRig struct {
	q     *fq
	st    PeerCounters
	freed int
}

// newFQRig returns a rig whose hash puts each of the flows of pks in a
// bucket of its own (a random seed makes two collide now and then).
func newFQRig(pks ...*pbuf) *fqRig {
	r := &fqRig{}
	r.q = newFQ(&r.st, func(*pbuf) { r.freed++ })
	for !r.distinct(pks) {
		r.q.seed = maphash.MakeSeed()
	}
	return r
}

func (r *fqRig) distinct(pks []*pbuf) bool {
	seen := map[uint64]uint64{} // bucket → hash
	for _, pk := range pks {
		h := r.q.flowHash(pk.data())
		if other, ok := seen[h%fqFlows]; ok && other != h {
			return false
		}
		seen[h%fqFlows] = h
	}
	return true
}

// flowPacket is an IPv4 packet of size bytes in flow (proto, sport).
func flowPacket(proto byte, sport uint16, size int) *pbuf {
	p := packettest.IPv4(proto, size, 0x10, int(sport))
	binary.BigEndian.PutUint16(p[20:22], sport)
	binary.BigEndian.PutUint16(p[22:24], 22)
	pk := &pbuf{buf: make([]byte, Headroom+size), n: size}
	copy(pk.data(), p)
	return pk
}

func (r *fqRig) add(pk *pbuf, at time.Duration) {
	pk.enq = at
	r.q.add(pk)
}

func sport(pk *pbuf) uint16 { return binary.BigEndian.Uint16(pk.data()[20:22]) }

// TestFQSparseFlowFirst: a packet of a flow that has nothing queued (a
// ping, a keystroke) leaves before the bulk flow's queued packets.
func TestFQSparseFlowFirst(t *testing.T) {
	r := newFQRig(flowPacket(6, 1000, 40), flowPacket(6, 2000, 40), flowPacket(1, 0, 40))
	for range 200 {
		r.add(flowPacket(6, 1000, 1400), 0)
	}
	for range 20 { // the bulk flow spends its first quantum
		r.q.take(0)
	}
	r.add(flowPacket(6, 2000, 100), 0)
	r.add(flowPacket(1, 0, 84), 0) // ICMP: no ports
	got := []uint16{sport(r.q.take(0)), sport(r.q.take(0))}
	if got[0] != 2000 || got[1] != 0 {
		t.Fatalf("after the new flows were queued, took flows %v, want [2000 0] before the bulk flow", got)
	}
	if pk := r.q.take(0); sport(pk) != 1000 {
		t.Fatalf("then flow %d, want the bulk flow", sport(pk))
	}
}

// TestFQFairShares: two bulk flows, one in 64 KB super-packets and one in
// 1400-byte packets, get the same bytes to within a super-packet.
func TestFQFairShares(t *testing.T) {
	r := newFQRig(flowPacket(6, 1, 40), flowPacket(6, 2, 40))
	for range 100 {
		r.add(flowPacket(6, 1, 65000), 0)
	}
	for range 5000 {
		r.add(flowPacket(6, 2, 1400), 0)
	}
	sent := map[uint16]int{}
	total := 0
	for total < 12<<20 { // each flow has more than half of this queued
		pk := r.q.take(0)
		sent[sport(pk)] += pk.n
		total += pk.n
	}
	if d := sent[1] - sent[2]; d > 65000+fqQuantum || -d > 65000+fqQuantum {
		t.Fatalf("bytes per flow %v: unequal by %d", sent, d)
	}
	if n, b := r.q.len(); n != 100+5000-countPackets(sent) || b != int64(100*65000+5000*1400-total) {
		t.Fatalf("len %d packets %d bytes after taking %d bytes", n, b, total)
	}
}

func countPackets(sent map[uint16]int) int { return sent[1]/65000 + sent[2]/1400 }

// TestFQFullDropsFattest: a full queue drops from the flow with the most
// bytes queued, not the packet that arrives.
func TestFQFullDropsFattest(t *testing.T) {
	r := newFQRig(flowPacket(6, 1, 40), flowPacket(17, 53, 40))
	const each = Headroom + 65000 // a packet's buffer
	for range queueMem / each {
		r.add(flowPacket(6, 1, 65000), 0)
	}
	r.add(flowPacket(6, 1, queueMem%each-Headroom-40), 0) // 40 bytes short of full
	r.add(flowPacket(17, 53, 80), 0)
	if r.st.DropQueue.Load() != 1 || r.freed != 1 {
		t.Fatalf("drops %d, freed %d: want the fat flow's one", r.st.DropQueue.Load(), r.freed)
	}
	// The DNS packet is there, and served as soon as the fat flow (new
	// too, never served) has spent its quantum on one super-packet.
	if first, second := r.q.take(0), r.q.take(0); sport(first) != 1 || sport(second) != 53 {
		t.Fatalf("took flows %d, %d, want 1, then the DNS packet", sport(first), sport(second))
	}
}

// TestFQBoundsBuffers: the queue's bound counts the buffers packets hold,
// not their bytes: 3000-byte packets in 64 KiB buffers (a node at MTU
// 65000 sending to a peer that stopped reading) pin at most queueMem.
func TestFQBoundsBuffers(t *testing.T) {
	r := newFQRig()
	for range 4 * queueMem / (64 << 10) {
		pk := flowPacket(17, 53, 3000)
		pk.buf = append(pk.buf, make([]byte, 64<<10-len(pk.buf))...)
		r.add(pk, 0)
	}
	if r.q.mem > queueMem {
		t.Fatalf("queue holds %d bytes of buffers, over its %d", r.q.mem, queueMem)
	}
	if n, _ := r.q.len(); n != queueMem/(64<<10) {
		t.Fatalf("%d packets queued, want %d", n, queueMem/(64<<10))
	}
}

// TestFQCoDelPerFlow: a flow whose queue stands is dropped from; a sparse
// flow beside it, over the same time, is not.
func TestFQCoDelPerFlow(t *testing.T) {
	r := newFQRig(flowPacket(6, 1, 40), flowPacket(1, 0, 40))
	ms := time.Millisecond
	sparse := 0
	for now := time.Duration(0); now < time.Second; now += ms {
		// The bulk flow keeps 100 packets (140 KB) queued: each waits 100 ms.
		for range 2 {
			r.add(flowPacket(6, 1, 1400), now)
		}
		if now%(20*ms) == 0 {
			r.add(flowPacket(1, 0, 84), now)
		}
		if now < 50*ms {
			continue
		}
		for range 2 {
			if pk := r.q.take(now); pk != nil && sport(pk) == 0 {
				sparse++
			}
		}
	}
	if r.st.DropDelay.Load() == 0 {
		t.Fatal("no CoDel drops from a standing queue")
	}
	if sparse < 45 {
		t.Fatalf("%d of 50 sparse packets taken", sparse)
	}
}

// TestFQMarksECN: from a standing queue of ECN-capable packets CoDel
// marks instead of dropping, and every packet leaves the queue.
func TestFQMarksECN(t *testing.T) {
	r := newFQRig()
	ms := time.Millisecond
	taken, ce := 0, 0
	for now := time.Duration(0); now < time.Second; now += ms {
		for range 2 {
			pk := flowPacket(6, 1, 1400)
			pk.data()[1] = 2 // ECT(0)
			r.add(pk, now)
		}
		if now < 50*ms {
			continue
		}
		for range 2 {
			if pk := r.q.take(now); pk != nil {
				taken++
				if pk.data()[1]&3 == 3 {
					ce++
				}
			}
		}
	}
	if drops, marks := r.st.DropDelay.Load(), r.st.MarkDelay.Load(); drops != 0 || marks == 0 || uint64(ce) != marks {
		t.Fatalf("%d drops, %d marks, %d packets taken marked CE: want marks only", drops, marks, ce)
	}
	if n, _ := r.q.len(); taken+n != 2000 {
		t.Fatalf("%d taken and %d queued of 2000", taken, n)
	}
}

func TestFlowHash(t *testing.T) {
	q := newFQ(&PeerCounters{}, func(*pbuf) {})
	h := func(pk *pbuf) uint64 { return q.flowHash(pk.data()) }
	if h(flowPacket(6, 1, 100)) != h(flowPacket(6, 1, 1400)) {
		t.Error("one TCP flow hashed twice")
	}
	if h(flowPacket(6, 1, 100)) == h(flowPacket(6, 2, 100)) || h(flowPacket(6, 1, 100)) == h(flowPacket(17, 1, 100)) {
		t.Error("flows differing in port or protocol hashed alike")
	}
	if h(flowPacket(1, 1, 100)) != h(flowPacket(1, 2, 100)) {
		t.Error("ICMP hashed by bytes that are not ports")
	}
	laterFragment := func(sport uint16) *pbuf {
		pk := flowPacket(17, sport, 100)
		binary.BigEndian.PutUint16(pk.data()[6:8], 10) // fragment offset 80: no ports in it
		return pk
	}
	if h(laterFragment(1)) != h(laterFragment(7)) {
		t.Error("a later fragment hashed by bytes that are not ports")
	}
	v6 := make([]byte, 60)
	v6[0], v6[6] = 0x60, 6
	v6b := append([]byte(nil), v6...)
	v6b[41] = 9 // another source port
	if q.flowHash(v6) == q.flowHash(v6b) {
		t.Error("IPv6 flows differing in port hashed alike")
	}
	if q.flowHash([]byte{0x45}) != 0 {
		t.Error("a truncated packet hashed")
	}
}

// BenchmarkFQ is one add and one take of a 1400-byte packet over 4 flows.
func BenchmarkFQ(b *testing.B) {
	r := newFQRig()
	pks := []*pbuf{flowPacket(6, 1, 1400), flowPacket(6, 2, 1400), flowPacket(6, 3, 1400), flowPacket(1, 0, 1400)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.q.add(pks[i%4])
		r.q.take(0)
	}
}

// TestFQTakeNew: while a gate holds the bulk back, takeNew serves only
// flows that had nothing queued (a ping beside an upload), and nothing
// once the bulk flow has spent its quantum and turned old.
func TestFQTakeNew(t *testing.T) {
	bulk, ping := flowPacket(6, 1, 1400), flowPacket(1, 0, 84)
	r := newFQRig(bulk, ping)
	for range 10 {
		r.add(flowPacket(6, 1, 1400), 0)
	}
	served := 0
	for served*1400 <= fqQuantum { // its quantum, as a new flow
		if pk := r.q.take(0); pk == nil || sport(pk) != 1 {
			t.Fatal("the bulk flow was not served")
		}
		served++
	}
	if pk := r.q.takeNew(0); pk != nil {
		t.Fatalf("takeNew gave the old bulk flow's packet (flow %d)", sport(pk))
	}
	r.add(ping, 0)
	if pk := r.q.takeNew(0); pk != ping {
		t.Fatalf("takeNew gave %v, want the ping", pk)
	}
	if pk := r.q.takeNew(0); pk != nil {
		t.Fatal("takeNew gave a packet after the ping")
	}
	if n, _ := r.q.len(); n != 10-served {
		t.Fatalf("%d packets left, want the bulk flow's %d", n, 10-served)
	}
}
