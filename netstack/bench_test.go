package netstack

import (
	"io"
	"net"
	"testing"
	"time"
)

// benchTransfer measures one TCP connection from A to B over the in-process
// pump: b.N writes of 64 KiB, timed until B has read everything.
func benchTransfer(b *testing.B, o pairOpts) {
	a, bs := pair(b, o)
	ln, err := bs.ListenTCP(5001)
	if err != nil {
		b.Fatal(err)
	}
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(conns)
			return
		}
		conns <- c
	}()
	c, err := a.DialContext(b.Context(), "tcp", "100.64.0.2:5001")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	srv, ok := <-conns
	if !ok {
		b.Fatal("accept failed")
	}
	defer srv.Close()
	ln.Close()
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, srv)
		done <- n
	}()

	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	if n := <-done; n != int64(b.N*len(chunk)) {
		b.Fatalf("received %d bytes, want %d", n, b.N*len(chunk))
	}
	b.StopTimer()
	stats := a.st.Stats().TCP
	b.ReportMetric(float64(stats.Retransmits.Value())/float64(b.N), "retrans/op")
}

// BenchmarkTCPThroughput is one TCP stream between two tuned stacks joined
// by a lossless in-process pump.
func BenchmarkTCPThroughput(b *testing.B) {
	benchTransfer(b, pairOpts{tune: defaultTuning})
}

// BenchmarkTuning compares each tuning choice against the defaults, on a
// lossless pump, one that drops 1 packet in 1000, and both with a 10 ms
// round trip. TUNING.md has the figures.
func BenchmarkTuning(b *testing.B) {
	without := func(change func(*tuning)) tuning {
		t := defaultTuning
		change(&t)
		return t
	}
	tunings := []struct {
		name string
		tune tuning
	}{
		{"tuned", defaultTuning},
		{"gvisor-baseline", baselineTuning},
		{"no-sack", without(func(t *tuning) { t.sack = false })},
		{"no-moderate", without(func(t *tuning) { t.moderate = false })},
		{"no-rack", without(func(t *tuning) { t.rack = false })},
		{"1MiB-buffers", without(func(t *tuning) { t.sendBuf, t.recvBuf = baselineTuning.sendBuf, baselineTuning.recvBuf })},
		{"queue-256", without(func(t *tuning) { t.queueLen = 256 })},
		{"reno", without(func(t *tuning) { t.congestion = "reno" })},
	}
	paths := []struct {
		name     string
		dropEach int
		delay    time.Duration
	}{
		{"lossless", 0, 0},
		{"loss-0.1pct", 1000, 0},
		{"rtt-10ms", 0, 5 * time.Millisecond},
		{"rtt-10ms-loss-0.1pct", 1000, 5 * time.Millisecond},
	}
	for _, path := range paths {
		for _, tt := range tunings {
			b.Run(path.name+"/"+tt.name, func(b *testing.B) {
				benchTransfer(b, pairOpts{tune: tt.tune, dropEach: path.dropEach, delay: path.delay})
			})
		}
	}
}
