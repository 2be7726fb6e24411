package p2p

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestPing: a ping goes over the connection packets use and says which
// path and transport that is; a peer with no connection is refused.
func TestPing(t *testing.T) {
	for _, tc := range []struct {
		name, listen, transport string
	}{
		{"tcp", "/ip4/127.0.0.1/tcp/0", "tcp"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1", "quic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, tc.listen)
			idb := b.host.ID()
			p2ptest.Eventually(t, "connection", func() bool { return a.State(idb).Connected })
			pong, err := a.Ping(context.Background(), idb)
			if err != nil {
				t.Fatal(err)
			}
			if pong.RTT <= 0 || pong.Transport != tc.transport || pong.Path != a.State(idb).Path || pong.Addr == nil {
				t.Errorf("pong %+v, state %+v", pong, a.State(idb))
			}
		})
	}
	t.Run("not connected", func(t *testing.T) {
		_, id := p2ptest.NewKey(t)
		a, _ := pair(t, "/ip4/127.0.0.1/tcp/0")
		if _, err := a.Ping(context.Background(), id); !errors.Is(err, ErrNotConnected) {
			t.Errorf("ping of a stranger: %v", err)
		}
	})
}

func TestWhyUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("no known address"), "no known address"},
		{"paragraph", fmt.Errorf("not found in the DHT yet: %w", errors.New("failed to find\n  * routing: not found")), "not found in the DHT yet: failed to find * routing: not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := whyUnreachable(tc.err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
