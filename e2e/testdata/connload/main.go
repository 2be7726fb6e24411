// Command connload is the e2e load tests' TCP checker. The server reads
// exactly -size bytes from each connection and answers with their SHA-256;
// the client opens -n connections at once (directly or through a SOCKS5
// proxy), sends each its own pseudo-random bytes once all are open, and
// checks every answer. The client exits non-zero with a summary on any
// failure.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/proxy"
)

func main() {
	mode := flag.String("mode", "", "server or client")
	addr := flag.String("addr", "", "server: listen address; client: target host:port")
	size := flag.Int("size", 64<<10, "bytes per connection")
	n := flag.Int("n", 1000, "client: concurrent connections")
	socks := flag.String("socks5", "", "client: dial through this SOCKS5 proxy, a URL (socks5h://USER:PASSWORD@HOST:PORT)")
	timeout := flag.Duration("timeout", 90*time.Second, "client: overall deadline")
	flag.Parse()
	if err := raiseNoFile(uint64(*n)*2 + 256); err != nil {
		fmt.Fprintln(os.Stderr, "connload: raise open-file limit:", err)
		os.Exit(2)
	}
	switch *mode {
	case "server":
		server(*addr, *size)
	case "client":
		os.Exit(client(*addr, *socks, *n, *size, *timeout))
	default:
		fmt.Fprintln(os.Stderr, "connload: -mode server|client")
		os.Exit(2)
	}
}

func raiseNoFile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	lim.Cur = want
	if lim.Max < want {
		lim.Max = want // root may raise the hard limit
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// server answers each connection with the SHA-256 of its first size bytes.
// Every 100 connections served it prints the count and the most connections
// it had open at once, for the test to read from its log.
func server(addr string, size int) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connload server:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", ln.Addr())
	var open, peak, served atomic.Int64
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "connload server: accept:", err)
			continue
		}
		if o := open.Add(1); o > peak.Load() {
			peak.Store(o)
		}
		go func() {
			defer c.Close()
			defer open.Add(-1)
			c.SetDeadline(time.Now().Add(5 * time.Minute))
			h := sha256.New()
			if _, err := io.CopyN(h, c, int64(size)); err != nil {
				fmt.Fprintln(os.Stderr, "connload server: read from", c.RemoteAddr(), ":", err)
				return
			}
			c.Write(h.Sum(nil))
			if s := served.Add(1); s%100 == 0 {
				fmt.Printf("served=%d peak_open=%d\n", s, peak.Load())
			}
		}()
	}
}

// payload is connection i's bytes: distinct for every connection.
func payload(i, size int) []byte {
	r := rand.New(rand.NewChaCha8(seed(i)))
	b := make([]byte, size)
	for j := 0; j < size; j += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[j:], w[:])
	}
	return b
}

func seed(i int) [32]byte {
	var s [32]byte
	copy(s[:], "mynetwork connload")
	binary.LittleEndian.PutUint64(s[24:], uint64(i))
	return s
}

type result struct {
	i    int
	err  error
	took time.Duration // from the moment all connections were open
}

func client(target, socks string, n, size int, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", target)
	}
	if socks != "" {
		u, err := url.Parse(socks)
		var p proxy.Dialer
		if err == nil {
			p, err = proxy.FromURL(u, proxy.Direct)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "connload client: SOCKS5:", err)
			return 2
		}
		dial = func(ctx context.Context) (net.Conn, error) {
			return p.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
		}
	}
	start := time.Now()
	var (
		wg      sync.WaitGroup
		dialed  sync.WaitGroup // every connection is open (or failed) before any sends
		results = make(chan result, n)
		okBytes atomic.Int64
	)
	dialed.Add(n)
	allOpen := make(chan struct{})
	var sendStart time.Time
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := one(ctx, dial, &dialed, allOpen, i, size, &okBytes)
			<-allOpen // a failed dial returns early; sendStart is set before the close
			results <- result{i, err, time.Since(sendStart)}
		}()
	}
	go func() { dialed.Wait(); sendStart = time.Now(); close(allOpen) }()
	<-allOpen
	openAfter := time.Since(start)
	wg.Wait()
	close(results)
	var failed []result
	var took []time.Duration
	for r := range results {
		if r.err != nil {
			failed = append(failed, r)
		} else {
			took = append(took, r.took)
		}
	}
	sort.Slice(failed, func(a, b int) bool { return failed[a].i < failed[b].i })
	sort.Slice(took, func(a, b int) bool { return took[a] < took[b] })
	pct := func(p int) time.Duration {
		if len(took) == 0 {
			return 0
		}
		return took[(len(took)-1)*p/100].Round(time.Millisecond)
	}
	// done_pNN: when NN% of the verified connections had their checksum,
	// counted from the moment all were open and began to send.
	fmt.Printf("connections=%d verified=%d failed=%d bytes_verified=%d size=%d all_open_after=%s done_p50=%s done_p90=%s done_p99=%s done_max=%s total=%s\n",
		n, n-len(failed), len(failed), okBytes.Load(), size, openAfter.Round(time.Millisecond),
		pct(50), pct(90), pct(99), pct(100), time.Since(start).Round(time.Millisecond))
	if len(failed) == 0 {
		return 0
	}
	for i, f := range failed {
		if i == 10 {
			fmt.Printf("... and %d more\n", len(failed)-10)
			break
		}
		fmt.Printf("FAIL conn %d: %v\n", f.i, f.err)
	}
	fmt.Printf("FAIL: %d of %d connections\n", len(failed), n)
	return 1
}

var errMismatch = errors.New("checksum mismatch")

func one(ctx context.Context, dial func(context.Context) (net.Conn, error), dialed *sync.WaitGroup, allOpen chan struct{}, i, size int, okBytes *atomic.Int64) error {
	data := payload(i, size)
	want := sha256.Sum256(data)
	c, err := dial(ctx)
	dialed.Done()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	<-allOpen
	if _, err := c.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var got [sha256.Size]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return fmt.Errorf("read checksum: %w", err)
	}
	if !bytes.Equal(got[:], want[:]) {
		return errMismatch
	}
	okBytes.Add(int64(size))
	return nil
}
