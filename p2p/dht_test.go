package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// dhtRecords is how many provider records the stranger in
// TestDHTKeepsNoRecords sends to each of the two tables (value records: a
// quarter of that).
const dhtRecords = 400

// TestDHTKeepsNoRecords: a stranger sends a DHT server node provider and
// value records, through kad-dht's own client with the node as its only
// peer, in both tables of the dual DHT; the node keeps none, and still
// answers FindPeer.
func TestDHTKeepsNoRecords(t *testing.T) {
	k, _ := p2ptest.NewKey(t)
	server := newNode(t, Options{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Reachability: "public", MaxPacket: 1500})
	start(t, server)
	serverInfo := peer.AddrInfo{ID: server.host.ID(), Addrs: server.host.Addrs()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A peer the stranger looks for, known to the node by its connection.
	target := newHost(t, "/ip4/127.0.0.1/tcp/0")
	if err := target.Connect(ctx, serverInfo); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		ext   protocol.ID
		table *dht.IpfsDHT
	}{
		{"wan", "", server.kad.WAN},
		{"lan", dual.LanExtension, server.kad.LAN},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, "/ip4/127.0.0.1/tcp/0")
			opts := []dht.Option{dht.Mode(dht.ModeClient), dht.BootstrapPeers(serverInfo)}
			if c.ext != "" {
				opts = append(opts, dht.ProtocolExtension(c.ext))
			}
			client, err := dht.New(h, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if err := h.Connect(ctx, serverInfo); err != nil {
				t.Fatal(err)
			}
			p2ptest.Eventually(t, "the node in the stranger's table", func() bool { return client.RoutingTable().Size() > 0 })

			keys := make([]cid.Cid, dhtRecords)
			for i := range keys {
				sum, _ := mh.Sum([]byte(rand.Text()), mh.SHA2_256, -1)
				keys[i] = cid.NewCidV1(cid.Raw, sum)
			}
			values := make(map[string][]byte, dhtRecords/4)
			for range dhtRecords / 4 {
				_, pub, _ := crypto.GenerateEd25519Key(nil)
				id, _ := peer.IDFromPublicKey(pub)
				values["/pk/"+string(id)], _ = crypto.MarshalPublicKey(pub)
			}
			var wg sync.WaitGroup
			work := make(chan func() error)
			for range 8 {
				wg.Go(func() {
					for f := range work {
						if err := f(); err != nil {
							t.Error(err)
						}
					}
				})
			}
			for _, key := range keys {
				work <- func() error { return client.Provide(ctx, key, true) }
			}
			for key, v := range values {
				work <- func() error { return client.PutValue(ctx, key, v) }
			}
			close(work)
			wg.Wait()

			kept := 0
			for _, key := range keys {
				if provs, err := c.table.ProviderStore().GetProviders(ctx, key.Hash()); err != nil {
					t.Fatal(err)
				} else if len(provs) > 0 {
					kept++
				}
			}
			for key := range values {
				vctx, vcancel := context.WithTimeout(ctx, time.Second)
				if _, err := c.table.GetValue(vctx, key); err == nil {
					kept++
				} else if errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				vcancel()
			}
			if kept > 0 {
				t.Errorf("the node kept %d of the %d records a stranger sent", kept, len(keys)+len(values))
			}

			ai, err := client.FindPeer(ctx, target.ID())
			if err != nil || len(ai.Addrs) == 0 {
				t.Fatalf("FindPeer through the node: %v, %v", ai, err)
			}
		})
	}
}

// logBuffer is a log sink the node's goroutines write to while the test
// reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// closedPort is a loopback TCP port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestBootstrapStates: a node reports each bootstrap peer as it found it,
// in status and once in its log: one that refuses the dial, a plain
// libp2p host that serves no DHT, and a DHT server; and says in one line
// when none of them will do.
func TestBootstrapStates(t *testing.T) {
	_, goneID := p2ptest.NewKey(t)
	port := closedPort(t)
	gone := peer.AddrInfo{ID: goneID, Addrs: []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))}}
	plain := newHost(t, "/ip4/127.0.0.1/tcp/0")
	plainInfo := peer.AddrInfo{ID: plain.ID(), Addrs: plain.Addrs()}
	ks, _ := p2ptest.NewKey(t)
	server := newNode(t, Options{Key: ks, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Reachability: "public", MaxPacket: 1500})
	start(t, server)
	serverInfo := peer.AddrInfo{ID: server.host.ID(), Addrs: server.host.Addrs()}

	for _, tc := range []struct {
		name string
		boot []peer.AddrInfo
		want []BootstrapState
		logs []string // each in the log exactly once
	}{
		{"none usable", []peer.AddrInfo{gone, plainInfo}, []BootstrapState{
			{ID: goneID, State: BootstrapUnreachable, Err: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d: connection refused", port)},
			{ID: plain.ID(), State: BootstrapNotServer, Err: "speaks neither /ipfs/kad/1.0.0 nor /ipfs/lan/kad/1.0.0"},
		}, []string{
			fmt.Sprintf(`level=WARN msg="bootstrap peer cannot be used" peer=%s state=unreachable err="/ip4/127.0.0.1/tcp/%d: connection refused"`, goneID, port),
			fmt.Sprintf(`level=WARN msg="bootstrap peer cannot be used" peer=%s state=not-dht-server err="speaks neither /ipfs/kad/1.0.0 nor /ipfs/lan/kad/1.0.0"`, plain.ID()),
			fmt.Sprintf(`level=WARN msg="cannot join the DHT: no bootstrap peer is a reachable DHT server; retrying" bootstrap="%s unreachable (/ip4/127.0.0.1/tcp/%d: connection refused); %s not-dht-server"`, goneID, port, plain.ID()),
		}},
		{"one server", []peer.AddrInfo{gone, serverInfo}, []BootstrapState{
			{ID: goneID, State: BootstrapUnreachable, Err: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d: connection refused", port)},
			{ID: server.host.ID(), State: BootstrapServer},
		}, []string{
			fmt.Sprintf(`level=INFO msg="bootstrap peer is a DHT server" peer=%s`, server.host.ID()),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logBuffer
			k, _ := p2ptest.NewKey(t)
			n := newNode(t, Options{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: tc.boot, MaxPacket: 1500,
				Log: slog.New(slog.NewTextHandler(&log, nil))})
			if got := n.BootstrapPeers(); len(got) != len(tc.boot) || got[0].State != BootstrapTrying {
				t.Fatalf("before Start: %+v", got)
			}
			start(t, n)
			p2ptest.Eventually(t, "every bootstrap peer tried", func() bool {
				return !strings.Contains(fmt.Sprint(n.BootstrapPeers()), BootstrapTrying)
			})
			// A few more rounds of the backoff: the log says each state once.
			time.Sleep(2 * time.Second)
			if got := n.BootstrapPeers(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("bootstrap peers:\ngot  %+v\nwant %+v", got, tc.want)
			}
			for _, line := range tc.logs {
				if c := strings.Count(log.String(), line); c != 1 {
					t.Errorf("%d times in the log: %s\n%s", c, line, log.String())
				}
			}
			if tc.name == "one server" && strings.Contains(log.String(), "cannot join the DHT") {
				t.Errorf("a node with a DHT server said it cannot join:\n%s", log.String())
			}
		})
	}
}

func TestDialProblem(t *testing.T) {
	a := ma.StringCast("/ip4/192.0.2.1/tcp/4001")
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", fmt.Errorf("failed to dial: %w", &swarm.DialError{Cause: errors.New("all dials failed"),
			DialErrors: []swarm.TransportError{{Address: a, Cause: refused}}}), "/ip4/192.0.2.1/tcp/4001: connection refused"},
		{"many", &swarm.DialError{DialErrors: []swarm.TransportError{{Address: a, Cause: refused}, {Address: a, Cause: refused},
			{Address: a, Cause: errors.New("timeout: no recent network activity")}, {Address: a, Cause: refused}}, Skipped: 1},
			"/ip4/192.0.2.1/tcp/4001: connection refused; /ip4/192.0.2.1/tcp/4001: connection refused; /ip4/192.0.2.1/tcp/4001: timeout: no recent network activity; and 2 more"},
		{"no addresses", &swarm.DialError{Cause: swarm.ErrNoAddresses}, "no addresses"},
		{"deadline", fmt.Errorf("failed to dial: %w", context.DeadlineExceeded), "no answer within 15s"},
		{"other", errors.New("peer id mismatch"), "peer id mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dialProblem(tc.err); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
