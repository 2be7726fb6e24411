package membership

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/internal/member"
)

// testHost is a Service's Host over a plain libp2p host. It keeps the
// hints it is given.
type testHost struct {
	h     host.Host
	mu    sync.Mutex
	hints map[peer.ID][]ma.Multiaddr
}

var _ Host = (*testHost)(nil)

func (t *testHost) ID() peer.ID { return t.h.ID() }

func (t *testHost) OwnAddrs(max int) []ma.Multiaddr {
	a := t.h.Addrs()
	return a[:min(len(a), max)]
}

func (t *testHost) PeerAddrs(p peer.ID, max int) []ma.Multiaddr {
	a := t.h.Peerstore().Addrs(p)
	return a[:min(len(a), max)]
}

func (t *testHost) ConnectedPeers() []peer.ID { return t.h.Network().Peers() }

func (t *testHost) Handle(proto protocol.ID, h network.StreamHandler) { t.h.SetStreamHandler(proto, h) }

func (t *testHost) NewStream(ctx context.Context, p peer.ID, proto protocol.ID) (network.Stream, error) {
	return t.h.NewStream(ctx, p, proto)
}

func (t *testHost) AddHints(p peer.ID, addrs []ma.Multiaddr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hints[p] = append(t.hints[p], addrs...)
}

// Reach connects to p at the addresses the host's peerstore has for it.
func (t *testHost) Reach(ctx context.Context, p peer.ID) bool {
	if len(t.h.Network().ConnsToPeer(p)) > 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return t.h.Connect(ctx, peer.AddrInfo{ID: p}) == nil
}

// Hints are the addresses AddHints was given for p.
func (t *testHost) Hints(p peer.ID) []ma.Multiaddr {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hints[p]
}

// newHost starts a host of key (nil: a new one) on loopback, closed
// when the test ends.
func newHost(t *testing.T, key crypto.PrivKey) host.Host {
	t.Helper()
	opts := []libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay()}
	if key != nil {
		opts = append(opts, libp2p.Identity(key))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// connect connects a to b.
func connect(t *testing.T, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// newMeshKey returns a fresh mesh key.
func newMeshKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	key, err := member.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// newStore is a store that trusts key, kept in a file of the test's.
func newStore(t *testing.T, key crypto.PrivKey) *member.Store {
	t.Helper()
	trust, err := member.NewTrust(key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return member.NewStore(trust, filepath.Join(t.TempDir(), "members.json"))
}

// newInvites are open invitations kept in a file of the test's.
func newInvites(t *testing.T) *member.Invites {
	t.Helper()
	v, err := member.OpenInvites(filepath.Join(t.TempDir(), "invites.json"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// issue signs a certificate of id named name, valid for a day from
// from, and adds it to each store with addrs as hints.
func issue(t *testing.T, key crypto.PrivKey, id peer.ID, name string, from time.Time, addrs []ma.Multiaddr, stores ...*member.Store) []byte {
	t.Helper()
	_, raw, err := member.Issue(key, id, name, nil, from, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if _, err := s.AddCertificate(raw, addrs, from); err != nil {
			t.Fatal(err)
		}
	}
	return raw
}

// knows is a Config.Known that knows ids alone.
func knows(ids ...peer.ID) func(peer.ID) bool {
	return func(p peer.ID) bool {
		for _, id := range ids {
			if p == id {
				return true
			}
		}
		return false
	}
}

// startService starts a service of cfg on h, closed when the test ends
// (before h). Unset functions know nobody, list nobody and count
// changes in *changed, if given.
func startService(t *testing.T, h host.Host, cfg Config, changed *atomic.Int32) (*Service, *testHost) {
	t.Helper()
	if cfg.Known == nil {
		cfg.Known = knows()
	}
	if cfg.Listed == nil {
		cfg.Listed = func(string, peer.ID) error { return nil }
	}
	if cfg.Changed == nil {
		cfg.Changed = func() {
			if changed != nil {
				changed.Add(1)
			}
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s, th := New(cfg), &testHost{h: h, hints: map[peer.ID][]ma.Multiaddr{}}
	s.Start(context.Background(), th)
	t.Cleanup(s.Close)
	return s, th
}

// sendRecords opens a records stream from h to p, writes b and waits
// for the other end to close it: the error is the reset, if it was.
func sendRecords(t *testing.T, h host.Host, p peer.ID, b []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, p, RecordsProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write(b); err != nil {
		return err
	}
	st.CloseWrite()
	_, err = io.ReadAll(st)
	return err
}
