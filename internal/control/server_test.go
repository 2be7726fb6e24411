package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// endlessJSONString reads as a JSON string that never ends.
type endlessJSONString struct{}

func (endlessJSONString) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestRouteBodyTooLarge(t *testing.T) {
	const want = "request body is larger than 65536 bytes"
	t.Run("client", func(t *testing.T) {
		path := socketIn(t, "ms0.sock")
		serve(t, path)
		_, err := NewClient("ms0", path).AddRoute(context.Background(), RouteRequest{Net: "10.0.0.0/24", Peer: strings.Repeat("b", maxRequestBody)})
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
	t.Run("endless body", func(t *testing.T) {
		head := "POST /v1/routes HTTP/1.1\r\nHost: mynetwork\r\nContent-Length: 1073741824\r\n\r\n" + `{"net":"`
		c := newMemConn(io.MultiReader(strings.NewReader(head), endlessJSONString{}))
		serveConn(t, &fuzzBackend{}, c)
		// the body up to the limit, and what buffers had read ahead
		if n := c.read.Load(); n > maxRequestBody+32<<10 {
			t.Errorf("the server read %d bytes of a request with a body it refuses", n)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(c.written())), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e apiError
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || e.Error != want {
			t.Fatalf("got %s %+v (%v), want 413 %q", resp.Status, e, err, want)
		}
	})
}
