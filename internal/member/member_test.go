package member

import (
	"bytes"
	"errors"
	"math/rand"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/config"
)

// now is the tests' clock: certificates are valid a day around it.
var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// testKey returns a mesh key, the same for the same seed, so that the
// fuzz corpus stays valid.
func testKey(tb testing.TB, seed int64) crypto.PrivKey {
	tb.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.New(rand.NewSource(seed)))
	if err != nil {
		tb.Fatal(err)
	}
	return priv
}

// testPeer returns a peer ID, the same for the same seed.
func testPeer(tb testing.TB, seed int64) peer.ID {
	tb.Helper()
	id, err := peer.IDFromPrivateKey(testKey(tb, seed))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// testCert returns a certificate for the peer of seed 100, signed by key,
// after edit has changed it.
func testCert(tb testing.TB, key crypto.PrivKey, edit func(*Certificate)) *Certificate {
	tb.Helper()
	id := testPeer(tb, 100)
	a := config.AddressesOf(id)
	c := &Certificate{
		Serial: 7, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		PeerID: id, Name: "laptop", IPv4: a.IPv4, IPv6: a.IPv6,
		Routes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00:1::/64")},
	}
	if edit != nil {
		edit(c)
	}
	if err := c.Sign(key); err != nil {
		tb.Fatal(err)
	}
	return c
}

func testTrust(tb testing.TB, keys ...crypto.PrivKey) *Trust {
	tb.Helper()
	var pubs []crypto.PubKey
	for _, k := range keys {
		pubs = append(pubs, k.GetPublic())
	}
	tr, err := NewTrust(pubs...)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// roundTrip encodes v, decodes it with parse and checks that it comes
// back the same; it returns the encoding and what was decoded.
func roundTrip[T interface{ Marshal() ([]byte, error) }](tb testing.TB, v T, parse func([]byte) (T, error)) ([]byte, T) {
	tb.Helper()
	b, err := v.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	back, err := parse(b)
	if err != nil {
		tb.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		tb.Errorf("decoded\n%+v\nwant\n%+v", back, v)
	}
	return b, back
}

func TestMeshKey(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalKey(b)
	if err != nil {
		t.Fatal(err)
	}
	fp1, _ := FingerprintOf(key.GetPublic())
	fp2, _ := FingerprintOf(back.GetPublic())
	if fp1 != fp2 || len(fp1.String()) != 64 {
		t.Errorf("fingerprints %s and %s, want one of 64 hex digits", fp1, fp2)
	}

	other, _, _ := crypto.GenerateSecp256k1Key(rand.New(rand.NewSource(1)))
	if _, err := MarshalKey(other); err == nil || !strings.Contains(err.Error(), "must be Ed25519") {
		t.Errorf("MarshalKey(secp256k1) = %v", err)
	}
	ob, _ := crypto.MarshalPrivateKey(other)
	if _, err := UnmarshalKey(ob); err == nil || !strings.Contains(err.Error(), "decode mesh key: a mesh key must be Ed25519") {
		t.Errorf("UnmarshalKey(secp256k1) = %v", err)
	}
	if _, err := NewTrust(other.GetPublic()); err == nil {
		t.Error("NewTrust accepted a secp256k1 key")
	}
}

func TestCertificateRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	for _, c := range []*Certificate{
		testCert(t, key, nil),
		testCert(t, key, func(c *Certificate) { c.Routes = nil }),
	} {
		_, back := roundTrip(t, c, ParseCertificate)
		if err := testTrust(t, key).Verify(back, now); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

func TestVerifyFails(t *testing.T) {
	key, stranger := testKey(t, 1), testKey(t, 2)
	id := testPeer(t, 100)
	tests := []struct {
		name string
		cert *Certificate
		at   time.Time
		want error
		msg  string
	}{
		{"expired", testCert(t, key, nil), now.Add(24*time.Hour + ClockSkew), ErrExpired,
			"certificate 7 of " + id.String() + ": expired at 2026-12-07T12:00:00Z"},
		{"not yet valid", testCert(t, key, nil), now.Add(-time.Hour - ClockSkew - time.Second), ErrNotYetValid,
			"not yet valid: valid from 2026-12-06T11:00:00Z"},
		{"unknown key", testCert(t, stranger, nil), now, ErrUnknownKey, "signed by an unknown mesh key"},
		{"bad signature", func() *Certificate {
			c := testCert(t, key, nil)
			c.Serial++
			return c
		}(), now, ErrBadSignature, "certificate 8 of " + id.String() + ": bad signature from mesh key"},
		{"name invalid", testCert(t, key, func(c *Certificate) { c.Name = "-laptop" }), now, ErrInvalidName,
			`name invalid: "-laptop": use letters, digits and inner dashes, at most 63`},
		{"addresses", testCert(t, key, func(c *Certificate) { c.PeerID = testPeer(t, 101) }), now, ErrAddressMismatch,
			"addresses do not match the peer ID: " + config.AddressesOf(id).IPv4.String()},
		{"route overlaps mesh", testCert(t, key, func(c *Certificate) {
			c.Routes = []netip.Prefix{netip.MustParsePrefix("100.64.1.0/24")}
		}), now, ErrInvalidRoute, "overlaps the mesh's own range"},
		{"route host bits", testCert(t, key, func(c *Certificate) {
			c.Routes = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16")}
		}), now, ErrInvalidRoute, "has host bits set"},
	}
	tr := testTrust(t, key)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.Verify(tt.cert, tt.at)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Verify = %v\nwant %v with %q", err, tt.want, tt.msg)
			}
		})
	}
}

// TestVerifySkew: a certificate is valid ClockSkew either side of its
// window, and no further.
func TestVerifySkew(t *testing.T) {
	key := testKey(t, 1)
	c, tr := testCert(t, key, nil), testTrust(t, key)
	for _, at := range []time.Time{c.NotBefore.Add(-ClockSkew), c.NotAfter.Add(ClockSkew - time.Second)} {
		if err := tr.Verify(c, at); err != nil {
			t.Errorf("Verify at %s: %v", at, err)
		}
	}
}

// TestTamper: changing any byte of a certificate makes it fail to decode
// or to verify.
func TestTamper(t *testing.T) {
	key := testKey(t, 1)
	tr := testTrust(t, key)
	b, err := testCert(t, key, nil).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(b)
			bad[i] ^= x
			c, err := ParseCertificate(bad)
			if err == nil {
				err = tr.Verify(c, now)
			}
			if err == nil {
				t.Fatalf("byte %d ^ %#x: certificate still verifies", i, x)
			}
		}
	}
}
