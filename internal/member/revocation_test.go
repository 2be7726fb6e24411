package member

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func testRevocation(tb testing.TB, key crypto.PrivKey, id peer.ID, serial uint64, before time.Time) *Revocation {
	tb.Helper()
	r := &Revocation{PeerID: id, Serial: serial, Before: before, Issued: now}
	if err := r.Sign(key); err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestRevocationRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	r := testRevocation(t, key, testPeer(t, 100), 7, now)
	b, back := roundTrip(t, r, ParseRevocation)
	if err := testTrust(t, key).VerifyRevocation(back); err != nil {
		t.Errorf("VerifyRevocation: %v", err)
	}
	b[len(b)-1] ^= 1
	if _, err := ParseRevocation(b[:len(b)-1]); err == nil || !strings.Contains(err.Error(), "signature: 63 bytes left") {
		t.Errorf("ParseRevocation(truncated) = %v", err)
	}
}

func TestVerifyRevocationFails(t *testing.T) {
	key, stranger := testKey(t, 1), testKey(t, 2)
	id := testPeer(t, 100)
	tr := testTrust(t, key)
	if err := tr.VerifyRevocation(testRevocation(t, stranger, id, 7, time.Time{})); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("by a stranger: %v", err)
	}
	r := testRevocation(t, key, id, 7, time.Time{})
	r.Serial = 8
	if err := tr.VerifyRevocation(r); !errors.Is(err, ErrBadSignature) ||
		!strings.HasPrefix(err.Error(), "revocation of "+id.String()+": bad signature") {
		t.Errorf("tampered: %v", err)
	}
	if err := (&Revocation{PeerID: id}).Sign(key); err == nil || !strings.Contains(err.Error(), "it revokes nothing") {
		t.Errorf("Sign of an empty revocation = %v", err)
	}
}

func TestRevocationList(t *testing.T) {
	key, other := testKey(t, 1), testKey(t, 2)
	id := testPeer(t, 100)
	c := testCert(t, key, nil) // serial 7, not before now-1h
	tests := []struct {
		name    string
		r       *Revocation
		revoked bool
	}{
		{"its serial", testRevocation(t, key, id, 7, time.Time{}), true},
		{"another serial", testRevocation(t, key, id, 8, time.Time{}), false},
		{"its serial from another key", testRevocation(t, other, id, 7, time.Time{}), false},
		{"another peer", testRevocation(t, key, testPeer(t, 101), 7, time.Time{}), false},
		{"all before now", testRevocation(t, key, id, 0, now), true},
		{"all before it", testRevocation(t, key, id, 0, c.NotBefore), false},
		{"all before now, another key", testRevocation(t, other, id, 0, now), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewRevocationList()
			if err := l.Add(tt.r); err != nil {
				t.Fatal(err)
			}
			if got := l.Revokes(c); got != tt.revoked {
				t.Errorf("Revokes = %v, want %v", got, tt.revoked)
			}
			tr := testTrust(t, key)
			tr.Revoked = l
			if err := tr.Verify(c, now); errors.Is(err, ErrRevoked) != tt.revoked {
				t.Errorf("Verify = %v", err)
			}
		})
	}
}

func TestRevocationListBounded(t *testing.T) {
	key := testKey(t, 1)
	id := testPeer(t, 100)
	l := NewRevocationList()
	for s := uint64(1); s <= MaxRevocations; s++ {
		if err := l.Add(&Revocation{PeerID: id, Serial: s, Key: Fingerprint{1}}); err != nil {
			t.Fatalf("Add %d: %v", s, err)
		}
	}
	// One already known is no new entry; a new one does not fit.
	if err := l.Add(&Revocation{PeerID: id, Serial: 1, Key: Fingerprint{1}}); err != nil {
		t.Errorf("Add again: %v", err)
	}
	err := l.Add(testRevocation(t, key, id, 0, now))
	if !errors.Is(err, ErrListFull) || !strings.Contains(err.Error(), "revocation list full (4096 entries)") {
		t.Errorf("Add past the bound = %v", err)
	}
	if l.Len() != MaxRevocations {
		t.Errorf("Len = %d", l.Len())
	}
}
