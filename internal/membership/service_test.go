package membership

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/internal/member"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// records encodes certificates, each n times, as member records.
func records(t *testing.T, n int, raws ...[]byte) []byte {
	t.Helper()
	var certs []member.Member
	for range n {
		for _, raw := range raws {
			certs = append(certs, member.Member{Raw: raw})
		}
	}
	var b bytes.Buffer
	if err := member.WriteRecords(&b, certs, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestRecordsFromStranger: a peer the node does not know may introduce
// itself with its own certificate, a few records at most, and nothing
// else; bad bytes reset its stream and leave the service working.
func TestRecordsFromStranger(t *testing.T) {
	key := newMeshKey(t)
	hA := newHost(t, nil)
	store := newStore(t, key)
	var changed atomic.Int32
	svc, _ := startService(t, hA, Config{Store: store}, &changed)
	keyS, idS := p2ptest.NewKey(t)
	hS := newHost(t, keyS)
	connect(t, hS, hA)
	_, idX := p2ptest.NewKey(t)
	now := time.Now()
	theirs := issue(t, key, idX, "x", now, nil)
	own := issue(t, key, idS, "s", now, nil)
	foreign := issue(t, newMeshKey(t), idS, "s", now, nil)

	has := func(p peer.ID) bool { _, ok := store.Member(p); return ok }
	steps := []struct {
		name                        string
		send                        []byte
		reset                       bool
		malformed, refused, changed int
		check                       func() bool
	}{
		{"another peer's certificate", records(t, 1, theirs), false, 0, 0, 0, func() bool { return !has(idX) }},
		{"its own, from another mesh key", records(t, 1, foreign), false, 0, 1, 0, func() bool { return !has(idS) }},
		{"garbage", []byte{9, 9, 9}, true, 1, 1, 0, func() bool { return !has(idS) }},
		{"its own certificate", records(t, 1, own), false, 1, 1, 1, func() bool { return has(idS) && !has(idX) }},
		{"four records", records(t, 4, own), false, 1, 1, 1, func() bool { return has(idS) }},
		{"five records", records(t, 5, own), true, 2, 1, 1, func() bool { return has(idS) }},
	}
	for _, st := range steps {
		err := sendRecords(t, hS, hA.ID(), st.send)
		if (err != nil) != st.reset {
			t.Errorf("%s: stream ended with %v, want a reset: %v", st.name, err, st.reset)
		}
		got := []int{int(svc.Malformed.Load()), int(svc.Refused.Load()), int(changed.Load())}
		if want := []int{st.malformed, st.refused, st.changed}; !slicesEqual(got, want) {
			t.Errorf("%s: malformed, refused, changed %v, want %v", st.name, got, want)
		}
		if !st.check() {
			t.Errorf("%s: the store holds the wrong certificates", st.name)
		}
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRevokeSpreads: a revocation on an admin node reaches the known
// peers it is connected to, which drop the member.
func TestRevokeSpreads(t *testing.T) {
	key := newMeshKey(t)
	hA, hB := newHost(t, nil), newHost(t, nil)
	storeA, storeB := newStore(t, key), newStore(t, key)
	now := time.Now()
	issue(t, key, hA.ID(), "a", now, nil, storeA, storeB)
	// An earlier holder of the name c, expired, then the one that holds
	// it now: revoking c means the latter.
	_, idOld := p2ptest.NewKey(t)
	issue(t, key, idOld, "c", now.Add(-48*time.Hour), nil, storeA)
	_, idC := p2ptest.NewKey(t)
	issue(t, key, idC, "c", now, nil, storeA, storeB)

	var changedB atomic.Int32
	a, _ := startService(t, hA, Config{Store: storeA, Signer: key, Invites: newInvites(t), Known: knows(hB.ID())}, nil)
	b, _ := startService(t, hB, Config{Store: storeB, Known: knows(hA.ID())}, &changedB)
	connect(t, hA, hB)

	id, name, err := a.Revoke("c")
	if err != nil || id != idC || name != "c" {
		t.Fatalf("Revoke(c) = %s, %q, %v; want %s, c", id, name, err, idC)
	}
	if _, ok := storeA.Member(idC); ok {
		t.Error("A still holds c")
	}
	// Changed comes last, after the member file is saved.
	p2ptest.Eventually(t, "B to take the revocation", func() bool { return changedB.Load() == 1 })
	if _, ok := storeB.Member(idC); ok {
		t.Error("B still holds c")
	}
	if _, ok := storeB.Member(hA.ID()); !ok {
		t.Error("B dropped A too")
	}

	tests := []struct {
		name string
		svc  *Service
		who  string
		want error
		msg  string
	}{
		{"nobody", a, "nobody", ErrNoMember, `no member is named or has the ID "nobody"`},
		{"itself", a, hA.ID().String(), ErrBadInput, "is this node: revoke it from another admin node"},
		{"not an admin", b, "a", ErrNotAdmin, "holds no mesh signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.svc.Revoke(tt.who)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Revoke = %v, want %v: %q", err, tt.want, tt.msg)
			}
		})
	}
}

// TestConnected: a node passes what it knows to a known peer it has
// connected to, with the addresses it knows for each member, which the
// peer hands its host.
func TestConnected(t *testing.T) {
	key := newMeshKey(t)
	hA, hB := newHost(t, nil), newHost(t, nil)
	storeA, storeB := newStore(t, key), newStore(t, key)
	now := time.Now()
	issue(t, key, hA.ID(), "a", now, nil, storeA)
	_, idC := p2ptest.NewKey(t)
	hint, err := ma.NewMultiaddr("/ip4/192.0.2.7/udp/4001/quic-v1")
	if err != nil {
		t.Fatal(err)
	}
	issue(t, key, idC, "c", now, []ma.Multiaddr{hint}, storeA)
	a, _ := startService(t, hA, Config{Store: storeA, Known: knows(hB.ID())}, nil)
	var changedB atomic.Int32
	_, thB := startService(t, hB, Config{Store: storeB, Known: knows(hA.ID())}, &changedB)
	connect(t, hA, hB)

	a.Connected(hB.ID())
	p2ptest.Eventually(t, "B to take A's records", func() bool { return changedB.Load() == 1 })
	if ms := storeB.Members(time.Now()); len(ms) != 2 {
		t.Errorf("B holds %d members, want A's 2", len(ms))
	}
	if m, _ := storeB.Member(hA.ID()); len(m.Addrs) == 0 || !m.Addrs[0].Equal(hA.Addrs()[0]) {
		t.Errorf("B has A's addresses as %v, want A's own %v", m.Addrs, hA.Addrs())
	}
	if m, _ := storeB.Member(idC); len(m.Addrs) != 1 || !m.Addrs[0].Equal(hint) {
		t.Errorf("B has c's addresses as %v, want the hint %s it came with", m.Addrs, hint)
	}
	if h := thB.Hints(idC); len(h) != 1 || !h[0].Equal(hint) {
		t.Errorf("B's host was given the hints %v for c, want %s", h, hint)
	}
}

// TestRenew: an admin renews the certificates that end within
// RenewWithin of the members connected to it and its own, not those of
// members it has no connection to, and the renewed ones reach the member.
func TestRenew(t *testing.T) {
	key := newMeshKey(t)
	hA, hB := newHost(t, nil), newHost(t, nil)
	storeA, storeB := newStore(t, key), newStore(t, key)
	now := time.Now()
	then := now.Add(-time.Hour) // valid a day from then: within RenewWithin
	issue(t, key, hA.ID(), "a", then, nil, storeA, storeB)
	issue(t, key, hB.ID(), "b", then, nil, storeA, storeB)
	_, idGone := p2ptest.NewKey(t)
	issue(t, key, idGone, "gone", then, nil, storeA)

	var changedB atomic.Int32
	a, _ := startService(t, hA, Config{Store: storeA, Signer: key, Invites: newInvites(t), Known: knows(hB.ID())}, nil)
	startService(t, hB, Config{Store: storeB, Known: knows(hA.ID())}, &changedB)
	connect(t, hA, hB)

	if n := a.Renew(now); n != 2 {
		t.Fatalf("Renew renewed %d certificates, want 2 (a's own and connected b's)", n)
	}
	for _, id := range []peer.ID{hA.ID(), hB.ID()} {
		if m, _ := storeA.Member(id); m.Cert.NotAfter.Sub(now) < member.DefaultValidity-time.Minute {
			t.Errorf("A holds %s's certificate until %s, not renewed", id, m.Cert.NotAfter)
		}
	}
	if m, _ := storeA.Member(idGone); m.Cert.NotAfter.Sub(now) > 24*time.Hour {
		t.Error("A renewed the certificate of a member it has no connection to")
	}
	p2ptest.Eventually(t, "B to take the renewed certificates", func() bool { return changedB.Load() == 1 })
	if m, _ := storeB.Member(hB.ID()); m.Cert.NotAfter.Sub(now) < member.DefaultValidity-time.Minute {
		t.Errorf("B's own certificate is still until %s", m.Cert.NotAfter)
	}
	if n := a.Renew(now); n != 0 {
		t.Errorf("a second Renew renewed %d", n)
	}
}

// passOnConnect makes h tell svc of each new connection, as the daemon
// does (p2p.Options.OnConnected).
func passOnConnect(h host.Host, svc *Service) {
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { svc.Connected(c.RemotePeer()) }})
}

// threeMembers makes the mesh key and hosts A and B, not connected, whose
// stores hold A, B and a third member C, which is not running.
func threeMembers(t *testing.T) (crypto.PrivKey, host.Host, host.Host, *member.Store, *member.Store, peer.ID) {
	key := newMeshKey(t)
	hA, hB := newHost(t, nil), newHost(t, nil)
	storeA, storeB := newStore(t, key), newStore(t, key)
	now := time.Now()
	issue(t, key, hA.ID(), "a", now, nil, storeA, storeB)
	issue(t, key, hB.ID(), "b", now, nil, storeA, storeB)
	_, idC := p2ptest.NewKey(t)
	issue(t, key, idC, "c", now, nil, storeA, storeB)
	return key, hA, hB, storeA, storeB, idC
}

// TestRevokeReachesUnconnected: a revocation reaches a member the admin
// had no connection to (on demand, most of them): the admin connects to
// it to pass it on.
func TestRevokeReachesUnconnected(t *testing.T) {
	key, hA, hB, storeA, storeB, idC := threeMembers(t)
	hA.Peerstore().AddAddrs(hB.ID(), hB.Addrs(), time.Hour)

	var changedB atomic.Int32
	a, _ := startService(t, hA, Config{Store: storeA, Signer: key, Invites: newInvites(t), Known: knows(hB.ID(), idC)}, nil)
	startService(t, hB, Config{Store: storeB, Known: knows(hA.ID(), idC)}, &changedB)
	if len(hA.Network().Peers()) != 0 {
		t.Fatal("A is connected before the revocation")
	}
	if _, _, err := a.Revoke("c"); err != nil {
		t.Fatal(err)
	}
	p2ptest.Eventually(t, "B to take the revocation", func() bool { return changedB.Load() == 1 })
	if _, ok := storeB.Member(idC); ok {
		t.Error("B still holds c")
	}
}

// TestSyncAtStart: a node that syncs (Config.SyncEvery) connects at start
// to a member it has no connection to, and so takes the news it missed
// while away: here a revocation the admin could not bring it.
func TestSyncAtStart(t *testing.T) {
	key, hA, hB, storeA, storeB, idC := threeMembers(t)

	a, _ := startService(t, hA, Config{Store: storeA, Signer: key, Invites: newInvites(t), Known: knows(hB.ID(), idC)}, nil)
	passOnConnect(hA, a)
	if _, _, err := a.Revoke("c"); err != nil { // A has no address for B
		t.Fatal(err)
	}
	hB.Peerstore().AddAddrs(hA.ID(), hA.Addrs(), time.Hour)
	var changedB atomic.Int32
	startService(t, hB, Config{Store: storeB, Known: knows(hA.ID(), idC), SyncEvery: time.Hour}, &changedB)
	p2ptest.Eventually(t, "B to take the revocation", func() bool { return changedB.Load() >= 1 })
	if _, ok := storeB.Member(idC); ok {
		t.Error("B still holds c")
	}
}

// TestConnectedSkipsWhatThePeerHolds: with SkipInStep, on a new
// connection a node passes its records only to a peer whose digest
// differs: a peer that holds the same gets none, one that lacks a
// certificate gets them.
func TestConnectedSkipsWhatThePeerHolds(t *testing.T) {
	key, hA, hB, storeA, storeB, _ := threeMembers(t)
	a, _ := startService(t, hA, Config{Store: storeA, Known: knows(hB.ID()), SkipInStep: true}, nil)
	var changedB atomic.Int32
	b, _ := startService(t, hB, Config{Store: storeB, Known: knows(hA.ID())}, &changedB)
	var digests, recordStreams atomic.Int32
	hB.SetStreamHandler(DigestProtocol, func(st network.Stream) { digests.Add(1); b.handleDigest(st) })
	hB.SetStreamHandler(RecordsProtocol, func(st network.Stream) { recordStreams.Add(1); b.handleRecords(st) })
	connect(t, hA, hB)

	a.Connected(hB.ID())
	p2ptest.Eventually(t, "A's digest at B", func() bool { return digests.Load() == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := recordStreams.Load(); n != 0 {
		t.Fatalf("B holds A's records, yet A sent them on %d streams", n)
	}

	_, idD := p2ptest.NewKey(t)
	issue(t, key, idD, "d", time.Now(), nil, storeA)
	a.Connected(hB.ID())
	p2ptest.Eventually(t, "B to take A's records", func() bool { return changedB.Load() == 1 })
	if _, ok := storeB.Member(idD); !ok || recordStreams.Load() != 1 {
		t.Errorf("B lacked d: it took it %v, on %d record streams (want 1)", ok, recordStreams.Load())
	}
}
