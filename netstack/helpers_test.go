package netstack

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end: a Stack's goroutines (gVisor's
// TCP processors) must be gone once it is closed. No gVisor goroutine needs
// to be ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const offset = 16 // what the engine uses

var (
	cfgA = Config{IPv4: netip.MustParseAddr("100.64.0.1"), IPv6: netip.MustParseAddr("fd6d:796e:6574::1")}
	cfgB = Config{IPv4: netip.MustParseAddr("100.64.0.2"), IPv6: netip.MustParseAddr("fd6d:796e:6574::2")}
)

// mustNew builds a stack with tune and closes it when the test ends.
func mustNew(tb testing.TB, cfg Config, tune tuning) *Stack {
	tb.Helper()
	s, err := newStack(cfg, tune)
	if err != nil {
		tb.Fatalf("New(%+v): %v", cfg, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// pairOpts configures pair.
type pairOpts struct {
	tune     tuning
	dropEach int           // drop every dropEach-th packet in each direction; 0: none
	delay    time.Duration // one-way delay added by the pump; 0: none
	offload  bool          // Config.Offload on both stacks
}

// pair builds stacks A and B joined by two pump goroutines, one per
// direction, as two engines and a perfect network would join them.
func pair(tb testing.TB, o pairOpts) (a, b *Stack) {
	tb.Helper()
	ca, cb := cfgA, cfgB
	ca.Offload, cb.Offload = o.offload, o.offload
	a = mustNew(tb, ca, o.tune)
	b = mustNew(tb, cb, o.tune)
	var wg sync.WaitGroup
	for _, dir := range [][2]*Stack{{a, b}, {b, a}} {
		from, to := dir[0], dir[1]
		if o.delay == 0 {
			wg.Go(func() { pump(from, to, o.dropEach, to) })
			continue
		}
		// A delay line: pump copies batches into the channel and the
		// second goroutine writes each one when it is due.
		line := &delayLine{c: make(chan delayed, 1<<14), delay: o.delay}
		wg.Go(func() { pump(from, line, o.dropEach, to); close(line.c) })
		wg.Go(func() { line.deliver(to) })
	}
	// Registered after mustNew's cleanups, so it runs first.
	tb.Cleanup(func() {
		a.Close()
		b.Close()
		wg.Wait()
	})
	return a, b
}

// packetWriter is the Write half of a Device.
type packetWriter interface {
	Write(bufs [][]byte, offset int) (int, error)
}

// pump moves packet batches from one stack to another (to, in front of the
// stack peer) until either is closed, dropping every dropEach-th packet if
// dropEach > 0.
func pump(from *Stack, to packetWriter, dropEach int, peer *Stack) {
	bufs := make([][]byte, from.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, offset+from.ReadSize()+64)
	}
	sizes := make([]int, len(bufs))
	out := make([][]byte, 0, len(bufs))
	count := 0
	for {
		n, err := from.Read(bufs, sizes, offset)
		if err != nil {
			return
		}
		out = out[:0]
		for i := range n {
			count++
			if dropEach > 0 && count%dropEach == 0 {
				continue
			}
			out = append(out, bufs[i][:offset+sizes[i]])
		}
		if _, err := to.Write(out, offset); err != nil || peer.closed.Load() {
			return
		}
	}
}

// delayed is a batch of packets in a delay line.
type delayed struct {
	due  time.Time
	pkts [][]byte
}

// delayLine is a packetWriter that hands packets on after a fixed delay.
type delayLine struct {
	c     chan delayed
	delay time.Duration
}

func (l *delayLine) Write(bufs [][]byte, offset int) (int, error) {
	pkts := make([][]byte, len(bufs))
	for i, b := range bufs {
		pkts[i] = append(make([]byte, 0, len(b)), b...)
	}
	l.c <- delayed{time.Now().Add(l.delay), pkts}
	return len(bufs), nil
}

// deliver writes each batch into to when it is due, until the line closes.
func (l *delayLine) deliver(to *Stack) {
	for d := range l.c {
		time.Sleep(time.Until(d.due))
		to.Write(d.pkts, offset)
	}
}

// inject writes one packet into s the way the engine does.
func inject(t *testing.T, s *Stack, pkt []byte) {
	t.Helper()
	buf := make([]byte, offset+len(pkt))
	copy(buf[offset:], pkt)
	if n, err := s.Write([][]byte{buf}, offset); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v; want 1, nil", n, err)
	}
}

// awaitPacket reads packets from s until match accepts one and returns it;
// it fails the test after a few seconds. It must be the only reader of s.
func awaitPacket(t *testing.T, s *Stack, match func(pkt []byte) bool) []byte {
	t.Helper()
	found := make(chan []byte, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs := [][]byte{make([]byte, offset+DefaultMTU+64)}
		sizes := []int{0}
		for {
			if _, err := s.Read(bufs, sizes, offset); err != nil {
				return
			}
			pkt := bufs[0][offset : offset+sizes[0]]
			if match(pkt) {
				found <- append([]byte(nil), pkt...)
				return
			}
		}
	}()
	defer func() { s.Close(); <-done }() // the reader goroutine must end
	select {
	case pkt := <-found:
		return pkt
	case <-time.After(5 * time.Second):
		t.Fatal("no matching packet from the stack")
		return nil
	}
}

// ipPacket is a parsed IPv4 or IPv6 header (no options or extensions).
type ipPacket struct {
	src, dst netip.Addr
	proto    byte
	payload  []byte
}

func parseIP(pkt []byte) (p ipPacket, ok bool) {
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		ihl := int(pkt[0]&0xf) * 4
		p.src = netip.AddrFrom4([4]byte(pkt[12:16]))
		p.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		p.proto = pkt[9]
		p.payload = pkt[ihl:]
		return p, len(pkt) >= ihl
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		p.src = netip.AddrFrom16([16]byte(pkt[8:24]))
		p.dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		p.proto = pkt[6]
		p.payload = pkt[40:]
		return p, true
	}
	return p, false
}

// buildIP wraps payload in an IPv4 or IPv6 header (by src's family) with
// protocol proto, and fills in the checksum at csumAt in payload (if ≥ 0),
// computed over the pseudo-header when pseudo is set (ICMPv6, UDP, TCP) or
// over payload alone (ICMPv4).
func buildIP(src, dst netip.Addr, proto byte, payload []byte, csumAt int, pseudo bool) []byte {
	var pkt, ph []byte
	if src.Is4() {
		pkt = make([]byte, 20+len(payload))
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[8] = 64
		pkt[9] = proto
		copy(pkt[12:], src.AsSlice())
		copy(pkt[16:], dst.AsSlice())
		binary.BigEndian.PutUint16(pkt[10:], ^checksum(pkt[:20], 0))
		ph = append(append(append(ph, src.AsSlice()...), dst.AsSlice()...), 0, proto, byte(len(payload)>>8), byte(len(payload)))
	} else {
		pkt = make([]byte, 40+len(payload))
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(payload)))
		pkt[6] = proto
		pkt[7] = 64
		copy(pkt[8:], src.AsSlice())
		copy(pkt[24:], dst.AsSlice())
		ph = append(append(append(ph, src.AsSlice()...), dst.AsSlice()...), 0, 0, byte(len(payload)>>8), byte(len(payload)), 0, 0, 0, proto)
	}
	body := pkt[len(pkt)-len(payload):]
	copy(body, payload)
	if csumAt >= 0 {
		var initial uint16
		if pseudo {
			initial = checksum(ph, 0)
		}
		binary.BigEndian.PutUint16(body[csumAt:], ^checksum(body, initial))
	}
	return pkt
}

// checksum is the ones' complement sum of b (RFC 1071), not inverted.
func checksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}
