package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// memConn is a client's connection to the control socket, held in memory:
// the server reads in and then io.EOF (as after the client's half-close),
// and what it writes collects in out. Reads never block, so deadlines are
// not needed.
type memConn struct {
	in        io.Reader
	read      atomic.Int64 // bytes the server has read
	mu        sync.Mutex
	out       bytes.Buffer
	closeOnce sync.Once
	closed    chan struct{}
}

func newMemConn(in io.Reader) *memConn { return &memConn{in: in, closed: make(chan struct{})} }

func (c *memConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	n, err := c.in.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *memConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

// CloseWrite lets a switched connection half-close, as a Unix socket can.
func (c *memConn) CloseWrite() error { return nil }

func (c *memConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *memConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "ms0.sock", Net: "unix"} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "@", Net: "unix"} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// oneConnListener hands out one connection, then waits to be closed.
type oneConnListener struct {
	conns     chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{conns: make(chan net.Conn, 1), closed: make(chan struct{})}
	l.conns <- c
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return &net.UnixAddr{Name: "ms0.sock", Net: "unix"} }

// serveConn serves c with a fresh Server over b until the server ends the
// connection by itself (it must: c reads io.EOF once its input is
// consumed), then shuts the server down and returns.
func serveConn(t *testing.T, b Backend, c *memConn) {
	t.Helper()
	s := NewServer(b)
	served := make(chan error, 1)
	go func() { served <- s.Serve(newOneConnListener(c)) }()
	ended := true
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
		ended = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v, want http.ErrServerClosed", err)
	}
	if !ended {
		t.Fatalf("the server did not end the connection after the client's input ended; it wrote %q", c.written())
	}
}

// fuzzBackend is fakeBackend whose Dial connects host "echo" to an
// in-memory echo (one end of a net.Pipe): the fuzzer dials nothing real.
type fuzzBackend struct {
	fakeBackend
	echoes sync.WaitGroup
}

func (b *fuzzBackend) Dial(ctx context.Context, host string, port uint16) (net.Conn, error) {
	if host != "echo" {
		return b.fakeBackend.Dial(ctx, host, port)
	}
	server, client := net.Pipe()
	b.echoes.Add(1)
	go func() {
		defer b.echoes.Done()
		defer client.Close()
		io.Copy(client, client)
	}()
	return server, nil
}

// netHTTPErrors are the error statuses that net/http answers by itself,
// in plain text, before a request reaches the API's handlers: a request
// it cannot parse or serve (400, 417, 431, 501, 505), and the mux's
// unknown path (404) and method (405).
var netHTTPErrors = map[int]bool{400: true, 404: true, 405: true, 417: true, 431: true, 501: true, 505: true}

// checkResponses checks that out, what the server wrote, is a sequence of
// valid HTTP responses to the requests in in: each error the API answers
// has a JSON body {"error": "..."}, each success a JSON body, and only
// net/http's own errors are plain text. A 101 ends the HTTP part (the rest
// is the switched connection's bytes) and answers only /v1/dial.
func checkResponses(t *testing.T, in, out []byte) {
	t.Helper()
	reqs := bufio.NewReader(bytes.NewReader(in))
	resps := bufio.NewReader(bytes.NewReader(out))
	for i := 0; ; i++ {
		// The server parses requests as http.ReadRequest does; the
		// request tells ReadResponse whether a body follows (not on HEAD).
		req, err := http.ReadRequest(reqs)
		if err == nil {
			io.Copy(io.Discard, req.Body)
		} else {
			req, reqs = nil, bufio.NewReader(strings.NewReader(""))
		}
		var resp *http.Response
		var body []byte
		for {
			if _, err := resps.Peek(1); err == io.EOF {
				return // the server need not answer a request cut short
			}
			resp, err = http.ReadResponse(resps, req)
			if err != nil {
				t.Fatalf("response %d is not valid HTTP (%v); the server wrote %q", i, err, out)
			}
			body, err = io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("response %d (%s): body: %v; the server wrote %q", i, resp.Status, err, out)
			}
			if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
				break
			}
			// 100 Continue, then the answer to the same request
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			if req == nil || req.URL.Path != "/v1/dial" || resp.Header.Get("Upgrade") != dialUpgrade {
				t.Fatalf("response %d switches protocols for %v: %q", i, req, out)
			}
			return
		}
		if req == nil || req.Method != http.MethodHead { // HEAD: no body to check
			checkBody(t, i, resp, body)
		}
		if resp.Close {
			// The server closes the connection after this answer: what
			// follows is its body, even to a HEAD request that net/http
			// refused (HEAD * HTTP/0.0 gets a 505 with a body).
			return
		}
	}
}

// checkBody checks one response's body: JSON for the API's answers, plain
// text only for net/http's own errors.
func checkBody(t *testing.T, i int, resp *http.Response, body []byte) {
	t.Helper()
	isJSON := resp.Header.Get("Content-Type") == "application/json"
	switch {
	case isJSON && resp.StatusCode >= 400:
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			t.Fatalf("response %d (%s): error body %q is not {\"error\": ...} (%v)", i, resp.Status, body, err)
		}
	case isJSON:
		if !json.Valid(body) {
			t.Fatalf("response %d (%s): body %q is not JSON", i, resp.Status, body)
		}
	case resp.StatusCode >= 400 && !netHTTPErrors[resp.StatusCode]:
		t.Fatalf("response %d (%s): error not in JSON: %q", i, resp.Status, body)
	case resp.StatusCode < 300:
		t.Fatalf("response %d (%s): success not in JSON: %q", i, resp.Status, body)
	}
}

// fuzzControlExchange sends in, as a local client could on the control
// socket, to a fresh Server over a fuzzBackend. The properties:
//   - nothing panics;
//   - the server ends the connection by itself once the input is consumed;
//   - it answers with valid HTTP (see checkResponses);
//   - Shutdown returns with no goroutine left behind (goleak, against
//     those running before the exchange).
func fuzzControlExchange(t *testing.T, in []byte) {
	ignore := goleak.IgnoreCurrent()
	b := &fuzzBackend{}
	c := newMemConn(bytes.NewReader(in))
	serveConn(t, b, c)
	b.echoes.Wait() // Shutdown has closed every switched connection
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("goroutines left after Shutdown: %v", err)
	}
	checkResponses(t, in, c.written())
}

// httpRequest is a request as a client sends it, with a Content-Length
// for a body.
func httpRequest(method, target, headers, body string) string {
	s := method + " " + target + " HTTP/1.1\r\nHost: mynetwork\r\n" + headers
	if body != "" {
		s += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	return s + "\r\n" + body
}

// FuzzControlAPI feeds arbitrary bytes to the control API's server as the
// requests of a local client on its socket; see fuzzControlExchange for
// the properties. The seeds cover each endpoint, its errors, the switch
// of /v1/dial, pipelined requests and requests net/http refuses.
func FuzzControlAPI(f *testing.F) {
	const upgrade = "Connection: Upgrade\r\nUpgrade: " + dialUpgrade + "\r\n"
	const jsonBody = "Content-Type: application/json\r\n"
	status := httpRequest("GET", "/v1/status", "", "")
	seeds := []string{
		status,
		httpRequest("GET", "/v1/peers", "", ""),
		httpRequest("GET", "/v1/routes", "", ""),
		httpRequest("POST", "/v1/routes", jsonBody, `{"net":"10.0.0.0/24","peer":"b","persist":true}`),
		httpRequest("POST", "/v1/routes", jsonBody, `{"net":"10.0.0.0/24","peer":"nobody"}`),
		httpRequest("POST", "/v1/routes", jsonBody, `{"net":`),
		httpRequest("POST", "/v1/routes", jsonBody+"Transfer-Encoding: chunked\r\n", "7\r\n{\"net\":\r\n9\r\n\"10/8\"}\r\n\r\n0\r\n\r\n"),
		httpRequest("POST", "/v1/routes", jsonBody+"Expect: 100-continue\r\n", `{"net":"fd00::/64","peer":"b"}`),
		"POST /v1/routes HTTP/1.1\r\nHost: mynetwork\r\nContent-Length: 100\r\n\r\n{\"net\":\"10.0.0.0/24\"}",
		httpRequest("DELETE", "/v1/routes?net=10.0.0.0%2F24&persist=true", "", ""),
		httpRequest("DELETE", "/v1/routes?net=10.0.0.0/24", "", ""),
		httpRequest("GET", "/v1/dial?host=echo&port=7", upgrade, "") + "over the mesh",
		httpRequest("GET", "/v1/dial?host=ms9&port=22", upgrade, ""),
		httpRequest("GET", "/v1/dial?host=echo&port=0", upgrade, ""),
		httpRequest("GET", "/v1/dial?host=echo&port=65536", upgrade, ""),
		httpRequest("GET", "/v1/dial?port=22", "", ""),
		httpRequest("HEAD", "/v1/status", "", ""),
		httpRequest("HEAD", "/v1/dial?host=echo&port=7", upgrade, ""),
		status + httpRequest("GET", "/v1/peers", "", "") + httpRequest("DELETE", "/v1/routes?net=x", "", ""),
		status + httpRequest("GET", "/v1/dial?host=echo&port=7", upgrade, "") + status,
		httpRequest("GET", "/v1/status", "Connection: close\r\n", "") + status,
		httpRequest("GET", "/v1/nothing", "", ""),
		httpRequest("PUT", "/v1/routes", "", ""),
		httpRequest("GET", "/v1/../v1/status", "", ""),
		httpRequest("GET", "/v1/status", "Expect: something\r\n", ""),
		httpRequest("POST", "/v1/routes", "Transfer-Encoding: gzip\r\n", "x"),
		"GET /v1/status HTTP/1.1\r\n\r\n",
		"GET /v1/status HTTP/1.0\r\n\r\n",
		"GET /v1/status HTTP/2.0\r\nHost: mynetwork\r\n\r\n",
		"GET /v1/status\r\n\r\n",
		"GET /v1/status HTTP/1.1\r\nHost: mynetwork\r\nBad Header: x\r\n\r\n",
		"GET /v1/status HTTP/1.1\r\nHost: mynetwork",
		"\x00\xff\r\n\r\n",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzControlExchange)
}
