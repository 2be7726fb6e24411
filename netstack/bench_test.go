package netstack

import (
	"fmt"
	"io"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// stallTimeout is how long a transfer may make no progress before the
// benchmark gives up on it.
const stallTimeout = 20 * time.Second

// benchTransfer measures one TCP connection from A to B over the in-process
// pump: b.N writes of 64 KiB, timed until B has read everything. It returns
// a non-nil error, with TCP diagnostics, if the connection stalls.
func benchTransfer(b *testing.B, o pairOpts) error {
	a, bs := pair(b, o)
	ln, err := bs.ListenTCP(5001)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := a.DialContext(b.Context(), "tcp", "100.64.0.2:5001")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	srv, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, srv)
		done <- n
	}()

	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		c.SetWriteDeadline(time.Now().Add(stallTimeout))
		if _, err := c.Write(chunk); err != nil {
			return fmt.Errorf("write: %v; %s", err, diagnose(a, bs))
		}
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	select {
	case n := <-done:
		if n != int64(b.N*len(chunk)) {
			b.Fatalf("received %d bytes, want %d", n, b.N*len(chunk))
		}
	case <-time.After(stallTimeout):
		return fmt.Errorf("read stalled; %s", diagnose(a, bs))
	}
	b.StopTimer()
	b.ReportMetric(float64(a.st.Stats().TCP.Retransmits.Value())/float64(b.N), "retrans/op")
	b.ReportMetric(float64(a.link.dropped.Load()+bs.link.dropped.Load())/float64(b.N), "linkdrops/op")
	return nil
}

// diagnose describes the TCP state of the stacks' connections.
func diagnose(stacks ...*Stack) string {
	var out string
	for i, s := range stacks {
		t := s.st.Stats().TCP
		out += fmt.Sprintf("stack %d: timeouts %d, retransmits %d, link drops %d", i,
			t.Timeouts.Value(), t.Retransmits.Value(), s.link.dropped.Load())
		for _, te := range s.st.RegisteredEndpoints() {
			if ep, ok := te.(tcpip.Endpoint); ok {
				var info tcpip.TCPInfoOption
				if ep.GetSockOpt(&info) == nil {
					out += fmt.Sprintf("; %+v", info)
				}
			}
		}
		out += ". "
	}
	return out
}

// BenchmarkTCPThroughput is one TCP stream between two stacks with New's
// settings, joined by a lossless in-process pump.
func BenchmarkTCPThroughput(b *testing.B) {
	if err := benchTransfer(b, pairOpts{tune: defaultTuning}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTuning compares New's settings with each one changed, and with
// all of them off, on four paths: lossless, 1 packet in 1000 dropped, a
// 10 ms round trip, and a 10 ms round trip with 1 packet in 10000 dropped.
// TUNING.md has the figures.
func BenchmarkTuning(b *testing.B) {
	with := func(change func(*tuning)) tuning {
		t := defaultTuning
		change(&t)
		return t
	}
	// Every variant other than "tuned" may hit a known gVisor stall
	// (TUNING.md); it then skips with the diagnostics instead of failing.
	tunings := []struct {
		name string
		tune tuning
	}{
		{"tuned", defaultTuning},
		{"all-off", allOffTuning},
		{"no-sack", with(func(t *tuning) { t.sack = false })},
		{"no-moderate", with(func(t *tuning) { t.moderate = false })},
		{"1MiB-buffers", with(func(t *tuning) { t.sendBuf, t.recvBuf = allOffTuning.sendBuf, allOffTuning.recvBuf })},
		{"queue-1024", with(func(t *tuning) { t.queueLen = 1024 })},
		{"rack", with(func(t *tuning) { t.rack = true })},
		{"cubic", with(func(t *tuning) { t.congestion = "cubic" })},
	}
	paths := []struct {
		name     string
		dropEach int
		delay    time.Duration
	}{
		{"lossless", 0, 0},
		{"loss-0.1pct", 1000, 0},
		{"rtt-10ms", 0, 5 * time.Millisecond},
		{"rtt-10ms-loss-0.01pct", 10000, 5 * time.Millisecond},
	}
	for _, path := range paths {
		for _, tt := range tunings {
			b.Run(path.name+"/"+tt.name, func(b *testing.B) {
				err := benchTransfer(b, pairOpts{tune: tt.tune, dropEach: path.dropEach, delay: path.delay})
				switch {
				case err != nil && tt.name != "tuned":
					b.Skipf("stalled (see TUNING.md): %v", err)
				case err != nil:
					b.Fatal(err)
				}
			})
		}
	}
}
