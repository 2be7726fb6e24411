package member

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/config"
)

// peerCert is a certificate of the peer of seed, named name, signed by
// key, valid from notBefore for a day, with serial; and its encoding.
func peerCert(tb testing.TB, key crypto.PrivKey, seed int64, name string, notBefore time.Time, serial uint64) (*Certificate, []byte) {
	tb.Helper()
	id := testPeer(tb, seed)
	c := testCert(tb, key, func(c *Certificate) {
		a := config.AddressesOf(id)
		c.PeerID, c.Name, c.IPv4, c.IPv6 = id, name, a.IPv4, a.IPv6
		c.NotBefore, c.NotAfter, c.Serial = notBefore, notBefore.Add(24*time.Hour), serial
	})
	raw, err := c.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return c, raw
}

func marshalled(tb testing.TB, v encoder) []byte {
	tb.Helper()
	b, err := v.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func addrs(tb testing.TB, ss ...string) []ma.Multiaddr {
	tb.Helper()
	var out []ma.Multiaddr
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// serialOfMember is the serial of p's certificate in s, 0 for none.
func serialOfMember(s *Store, p peer.ID) uint64 {
	if m, ok := s.Member(p); ok {
		return m.Cert.Serial
	}
	return 0
}

// TestStore: a store keeps one certificate per peer, the one issued
// last, refuses what does not verify, and drops what a revocation
// withdraws.
func TestStore(t *testing.T) {
	key, stranger := testKey(t, 1), testKey(t, 2)
	s := NewStore(testTrust(t, key), "")
	p := testPeer(t, 100)
	_, first := peerCert(t, key, 100, "laptop", now.Add(-2*time.Hour), 7)
	_, later := peerCert(t, key, 100, "laptop", now.Add(-time.Hour), 3)
	_, sameSecond := peerCert(t, key, 100, "laptop", now.Add(-time.Hour), 4)
	_, foreign := peerCert(t, stranger, 100, "laptop", now, 9)

	steps := []struct {
		name   string
		raw    []byte
		addrs  []ma.Multiaddr
		added  bool
		err    error
		serial uint64 // p's certificate after the step
	}{
		{"first", first, nil, true, nil, 7},
		{"again", first, nil, false, nil, 7},
		{"issued later replaces", later, nil, true, nil, 3},
		{"issued earlier does not", first, nil, false, nil, 3},
		{"same second, higher serial replaces", sameSecond, nil, true, nil, 4},
		{"same second, lower serial does not", later, nil, false, nil, 4},
		{"unknown key", foreign, nil, false, ErrUnknownKey, 4},
		{"malformed", first[:len(first)-1], nil, false, errMalformed, 4},
		{"hints of the same certificate", sameSecond, addrs(t, "/ip4/192.0.2.1/tcp/4001"), false, nil, 4},
	}
	for _, st := range steps {
		added, err := s.AddCertificate(st.raw, st.addrs, now)
		if added != st.added || !errors.Is(err, st.err) {
			t.Errorf("%s: AddCertificate = %v, %v; want %v, %v", st.name, added, err, st.added, st.err)
		}
		if got := serialOfMember(s, p); got != st.serial {
			t.Errorf("%s: serial %d in the store, want %d", st.name, got, st.serial)
		}
	}
	if m, _ := s.Member(p); len(m.Addrs) != 1 || m.Addrs[0].String() != "/ip4/192.0.2.1/tcp/4001" {
		t.Errorf("hints %v, want the one given with the certificate it holds", m.Addrs)
	}

	// A revocation drops the certificate it withdraws, and the store
	// refuses it from then on; a revocation only counts once.
	rev := marshalled(t, testRevocation(t, key, p, 4, time.Time{}))
	if added, err := s.AddRevocation(rev); !added || err != nil {
		t.Fatalf("AddRevocation = %v, %v", added, err)
	}
	if _, ok := s.Member(p); ok {
		t.Error("the revoked certificate is still in the store")
	}
	if _, err := s.AddCertificate(sameSecond, nil, now); !errors.Is(err, ErrRevoked) {
		t.Errorf("AddCertificate(revoked) = %v, want %v", err, ErrRevoked)
	}
	if added, err := s.AddRevocation(rev); added || err != nil {
		t.Errorf("AddRevocation again = %v, %v", added, err)
	}
	if _, err := s.AddRevocation(marshalled(t, testRevocation(t, stranger, p, 3, time.Time{}))); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("AddRevocation(unknown key) = %v", err)
	}
	if _, err := s.AddRevocation(rev[:10]); !errors.Is(err, errMalformed) {
		t.Errorf("AddRevocation(truncated) = %v", err)
	}
	if _, revs := s.Records(); len(revs) != 1 {
		t.Errorf("%d revocations held, want 1", len(revs))
	}
	// An earlier certificate of another serial is not withdrawn by it.
	if added, err := s.AddCertificate(later, nil, now); !added || err != nil {
		t.Errorf("AddCertificate(serial 3) = %v, %v", added, err)
	}
}

// TestStoreMembers: Members are the certificates valid at the time
// given, by name; Records has them all, expired ones too, newest first.
func TestStoreMembers(t *testing.T) {
	key := testKey(t, 1)
	s := NewStore(testTrust(t, key), "")
	for _, c := range []struct {
		seed      int64
		name      string
		notBefore time.Time
	}{
		{101, "zed", now.Add(-time.Hour)},
		{102, "amy", now.Add(-23 * time.Hour)}, // expires in an hour
		{103, "bob", now.Add(-2 * time.Hour)},
	} {
		_, raw := peerCert(t, key, c.seed, c.name, c.notBefore, 1)
		if _, err := s.AddCertificate(raw, nil, now); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ms []Member) (out []string) {
		for _, m := range ms {
			out = append(out, m.Cert.Name)
		}
		return out
	}
	tests := []struct {
		name string
		at   time.Time
		want []string
	}{
		{"now", now, []string{"amy", "bob", "zed"}},
		{"within the skew of an expiry", now.Add(time.Hour + ClockSkew - time.Second), []string{"amy", "bob", "zed"}},
		{"past the skew of an expiry", now.Add(time.Hour + ClockSkew), []string{"bob", "zed"}},
		{"before any is valid", now.Add(-23*time.Hour - ClockSkew - time.Second), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(s.Members(tt.at)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Members = %v, want %v", got, tt.want)
			}
		})
	}
	// Records are newest first: Revoke takes the first of a name.
	if certs, _ := s.Records(); !reflect.DeepEqual(names(certs), []string{"zed", "bob", "amy"}) {
		t.Errorf("Records = %v, want all three, newest first", names(certs))
	}
}

// TestStoreBounded: a store holds MaxMembers peers; a newer certificate
// of one it holds still replaces the old one. Signing and verifying
// MaxMembers certificates takes seconds under the race detector, so all
// but the last two places are filled with stand-ins.
func TestStoreBounded(t *testing.T) {
	key := testKey(t, 1)
	s := NewStore(testTrust(t, key), "")
	for i := range MaxMembers - 1 {
		id := peer.ID(fmt.Sprintf("stand-in %d", i))
		s.certs[id] = &Member{Cert: &Certificate{PeerID: id}}
	}
	_, last := peerCert(t, key, 101, "amy", now.Add(-time.Hour), 1)
	if added, err := s.AddCertificate(last, nil, now); !added || err != nil {
		t.Fatalf("AddCertificate(the last that fits) = %v, %v", added, err)
	}
	_, raw := peerCert(t, key, 102, "bob", now.Add(-time.Hour), 1)
	if _, err := s.AddCertificate(raw, nil, now); !errors.Is(err, ErrStoreFull) || !strings.Contains(err.Error(), "member store full (4096)") {
		t.Errorf("AddCertificate past the bound = %v", err)
	}
	_, raw = peerCert(t, key, 101, "amy", now, 2)
	if added, err := s.AddCertificate(raw, nil, now); !added || err != nil {
		t.Errorf("AddCertificate(newer of a member) in a full store = %v, %v", added, err)
	}
}

// TestStoreFile: what a store saves, a fresh store loads the same, but
// for what no longer verifies.
func TestStoreFile(t *testing.T) {
	key, other := testKey(t, 1), testKey(t, 2)
	path := filepath.Join(t.TempDir(), "members.json")
	s := NewStore(testTrust(t, key, other), path)
	if err := s.Load(now); err != nil {
		t.Fatalf("Load without a file: %v", err)
	}
	_, mine := peerCert(t, key, 101, "amy", now.Add(-time.Hour), 1)
	_, theirs := peerCert(t, other, 102, "bob", now.Add(-2*time.Hour), 2)
	if _, err := s.AddCertificate(mine, addrs(t, "/ip4/192.0.2.1/udp/4001/quic-v1", "/ip6/2001:db8::1/tcp/4001"), now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddCertificate(theirs, nil, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRevocation(marshalled(t, testRevocation(t, key, testPeer(t, 103), 5, time.Time{}))); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("member file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}

	back := NewStore(testTrust(t, key, other), path)
	if err := back.Load(now); err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantCerts, wantRevs := s.Records()
	gotCerts, gotRevs := back.Records()
	if !reflect.DeepEqual(gotRevs, wantRevs) || len(gotCerts) != len(wantCerts) {
		t.Fatalf("loaded %d certificates and %d revocations, want %d and %d", len(gotCerts), len(gotRevs), len(wantCerts), len(wantRevs))
	}
	for i := range wantCerts {
		g, w := gotCerts[i], wantCerts[i]
		if string(g.Raw) != string(w.Raw) || !reflect.DeepEqual(g.Cert, w.Cert) || !sameAddrs(g.Addrs, w.Addrs) {
			t.Errorf("certificate %d loaded as %+v, want %+v", i, g, w)
		}
	}
	if back.Trust().Revoked.Len() != 1 {
		t.Errorf("the loaded revocation is not on the trust's list")
	}

	// A store that no longer trusts the other key leaves its certificate
	// out, says so, and takes the rest.
	mineOnly := NewStore(testTrust(t, key), path)
	err := mineOnly.Load(now)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "member file "+path+": certificates[1]: certificate 2 of ") {
		t.Errorf("Load trusting one key = %v", err)
	}
	if _, ok := mineOnly.Member(testPeer(t, 101)); !ok {
		t.Error("the certificate of the trusted key was left out")
	}
	if _, ok := mineOnly.Member(testPeer(t, 102)); ok {
		t.Error("the certificate of the untrusted key was taken")
	}

	// Expired by the time it is loaded: left out too.
	if err := NewStore(testTrust(t, key, other), path).Load(now.Add(48 * time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("Load two days on = %v, want %v", err, ErrExpired)
	}

	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewStore(testTrust(t, key), path).Load(now); err == nil || !strings.HasPrefix(err.Error(), "member file "+path+": ") {
		t.Errorf("Load of a broken file = %v", err)
	}
	if err := NewStore(testTrust(t, key), "").Save(); err != nil {
		t.Errorf("Save without a file = %v", err)
	}
}

func sameAddrs(a, b []ma.Multiaddr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// TestStoreDigest: two stores that heard the same records in another
// order, with other hints, have one digest; a certificate or a
// revocation more, or an expired certificate, changes it.
func TestStoreDigest(t *testing.T) {
	key := testKey(t, 1)
	a, b := NewStore(testTrust(t, key), ""), NewStore(testTrust(t, key), "")
	_, amy := peerCert(t, key, 101, "amy", now.Add(-23*time.Hour), 1) // expires in an hour
	_, bob := peerCert(t, key, 102, "bob", now.Add(-time.Hour), 1)
	hint := []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/4001")}
	for _, add := range []struct {
		s     *Store
		raw   []byte
		hints []ma.Multiaddr
	}{{a, amy, nil}, {a, bob, hint}, {b, bob, nil}, {b, amy, hint}} {
		if _, err := add.s.AddCertificate(add.raw, add.hints, now); err != nil {
			t.Fatal(err)
		}
	}
	if a.Digest(now) != b.Digest(now) {
		t.Fatal("stores with the same certificates have different digests")
	}
	later := now.Add(time.Hour + ClockSkew)
	if a.Digest(later) == a.Digest(now) {
		t.Error("amy's expiry did not change the digest")
	}
	catCert, cat := peerCert(t, key, 103, "cat", now.Add(-time.Hour), 1)
	if _, err := b.AddCertificate(cat, nil, now); err != nil {
		t.Fatal(err)
	}
	if a.Digest(now) == b.Digest(now) {
		t.Error("a certificate more did not change the digest")
	}
	if _, err := a.AddCertificate(cat, nil, now); err != nil {
		t.Fatal(err)
	}
	rev, err := testRevocation(t, key, catCert.PeerID, catCert.Serial, catCert.NotBefore.Add(time.Second)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddRevocation(rev); err != nil {
		t.Fatal(err)
	}
	if a.Digest(now) == b.Digest(now) {
		t.Error("a revocation more did not change the digest")
	}
	if _, err := a.AddRevocation(rev); err != nil {
		t.Fatal(err)
	}
	if a.Digest(now) != b.Digest(now) {
		t.Error("the same revocation on both: digests differ")
	}
}
