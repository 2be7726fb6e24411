package member

import (
	"bytes"
	"testing"
	"time"
)

type encoder interface{ Marshal() ([]byte, error) }

// addSeeds adds the encodings of vs to f's corpus.
func addSeeds[T encoder](f *testing.F, vs ...T) {
	for _, v := range vs {
		b, err := v.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// reencodes decodes b with parse; what decodes must encode back to b,
// since each value has one encoding. ok is whether b decoded.
func reencodes[T encoder](t *testing.T, b []byte, parse func([]byte) (T, error)) (v T, ok bool) {
	v, err := parse(b)
	if err != nil {
		return v, false
	}
	again, err := v.Marshal()
	if err != nil {
		t.Fatalf("decoded, but does not encode: %v", err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("encodes as\n%x\nnot\n%x", again, b)
	}
	return v, true
}

// FuzzCertificate: any bytes decode or fail without a panic; what decodes
// encodes back to the same bytes and goes through verification without a
// panic.
func FuzzCertificate(f *testing.F) {
	key := testKey(f, 1)
	tr := testTrust(f, key)
	tr.Revoked = NewRevocationList()
	addSeeds(f, testCert(f, key, nil), testCert(f, key, func(c *Certificate) { c.Routes = nil }))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, ok := reencodes(t, b, ParseCertificate); ok {
			_ = tr.Verify(c, now)
		}
	})
}

// FuzzRevocation is FuzzCertificate for revocations.
func FuzzRevocation(f *testing.F) {
	key := testKey(f, 1)
	tr := testTrust(f, key)
	addSeeds(f, testRevocation(f, key, testPeer(f, 100), 7, time.Time{}), testRevocation(f, key, testPeer(f, 100), 0, now))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, ok := reencodes(t, b, ParseRevocation); ok && tr.VerifyRevocation(r) == nil {
			_ = NewRevocationList().Add(r)
		}
	})
}
