package engine

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

const benchBatch = 64

// benchDevice hands out the same batch of packets reads times, then reports
// closed; writes are counted and dropped. It allocates nothing per call.
type benchDevice struct {
	pkts    [][]byte
	reads   int
	written int
}

func (d *benchDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if d.reads == 0 {
		return 0, os.ErrClosed
	}
	d.reads--
	n := min(len(bufs), len(d.pkts))
	for i := range n {
		sizes[i] = copy(bufs[i][offset:], d.pkts[i])
	}
	return n, nil
}

func (d *benchDevice) Write(bufs [][]byte, offset int) (int, error) {
	d.written += len(bufs)
	return len(bufs), nil
}
func (d *benchDevice) MTU() (int, error) { return 1420, nil }
func (d *benchDevice) BatchSize() int    { return benchBatch }
func (d *benchDevice) Close() error      { return nil }

// benchTransport counts sent packets and receives the same batch, from one
// peer, receives times.
type benchTransport struct {
	pkts     [][]byte
	from     peer.ID
	receives int
	sent     int
}

func (t *benchTransport) Send(_ peer.ID, pkts [][]byte) error { t.sent += len(pkts); return nil }
func (t *benchTransport) Receive(bufs [][]byte, sizes []int, from []peer.ID, offset int) (int, error) {
	if t.receives == 0 {
		return 0, net.ErrClosed
	}
	t.receives--
	n := min(len(bufs), len(t.pkts))
	for i := range n {
		sizes[i] = copy(bufs[i][offset:], t.pkts[i])
		from[i] = t.from
	}
	return n, nil
}
func (t *benchTransport) Close() error { return nil }

func benchPackets(dst, src netip.Addr) [][]byte {
	pkts := make([][]byte, benchBatch)
	for i := range pkts {
		pkts[i] = tuntest.Ping(dst, src)
	}
	return pkts
}

// BenchmarkOutbound measures the device → transport loop per batch of 64
// packets: route lookup and hand-off, which must not allocate.
func BenchmarkOutbound(b *testing.B) { benchOutbound(b, &benchTransport{}) }

// counter is a bench transport that counts what it was given.
type counter interface {
	Transport
	count() int
}

func (t *benchTransport) count() int { return t.sent }

func benchOutbound(b *testing.B, tr counter) {
	dev := &benchDevice{pkts: benchPackets(ipB, ipA), reads: b.N}
	e, _ := New(dev, tr, NewTable([]Route{{netip.PrefixFrom(ipB, 32), idB}}, localOf(idA)), nil)
	b.ReportAllocs()
	b.SetBytes(int64(benchBatch * len(dev.pkts[0])))
	b.ResetTimer()
	if err := e.outbound(); err != nil {
		b.Fatal(err)
	}
	if tr.count() != b.N*benchBatch {
		b.Fatalf("sent %d of %d", tr.count(), b.N*benchBatch)
	}
}

// takingTransport swaps each sent buffer with one of its own, as the p2p
// transport does with large packets, without allocating.
type takingTransport struct {
	benchTransport
	spare [][]byte
}

func (t *takingTransport) SendBuffers(_ peer.ID, bufs [][]byte, _ []int, _ int) error {
	for i := range bufs {
		bufs[i], t.spare[i] = t.spare[i], bufs[i]
	}
	t.sent += len(bufs)
	return nil
}

// BenchmarkOutboundBuffers is BenchmarkOutbound over a transport that takes
// the buffers (engine.BufferTaker).
func BenchmarkOutboundBuffers(b *testing.B) {
	benchOutbound(b, &takingTransport{spare: makeBufs(benchBatch, BufferSize(&benchDevice{}, nil))})
}

// BenchmarkInbound measures the transport → device loop per batch of 64
// packets: source check and batched write, which must not allocate.
func BenchmarkInbound(b *testing.B) {
	dev := &benchDevice{}
	tr := &benchTransport{pkts: benchPackets(ipA, ipB), from: idB, receives: b.N}
	e, _ := New(dev, tr, NewTable([]Route{{netip.PrefixFrom(ipB, 32), idB}}, localOf(idA)), nil)
	b.ReportAllocs()
	b.SetBytes(int64(benchBatch * len(tr.pkts[0])))
	b.ResetTimer()
	if err := e.inbound(); err != nil {
		b.Fatal(err)
	}
	if dev.written != b.N*benchBatch {
		b.Fatalf("wrote %d of %d", dev.written, b.N*benchBatch)
	}
}

// TestPacketPathDoesNotAllocate pins the benchmarks' 0 allocs/op.
func TestPacketPathDoesNotAllocate(t *testing.T) {
	for name, bench := range map[string]func(*testing.B){"outbound": BenchmarkOutbound, "outbound by buffer": BenchmarkOutboundBuffers, "inbound": BenchmarkInbound} {
		r := testing.Benchmark(bench)
		// Setup (buffers, the table) is allocated once per run, not per batch.
		if per := r.AllocsPerOp(); per != 0 {
			t.Errorf("%s: %d allocs per batch, want 0", name, per)
		}
	}
}
