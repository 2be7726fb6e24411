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

// FuzzRecords: any bytes read as records until an error or the end
// without a panic, each record within its bounds; what was read writes
// back as records that read the same.
func FuzzRecords(f *testing.F) {
	_, _, stream := testRecords(f)
	f.Add(stream)
	f.Add(stream[:len(stream)/2])
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var again bytes.Buffer
		var recs []Record
		// Each record takes a byte at least: the loop ends.
		for range len(b) + 1 {
			rec, err := ReadRecord(r)
			if err != nil {
				break
			}
			if (rec.Certificate == nil) == (rec.Revocation == nil) || len(rec.Certificate) > MaxCertificateSize ||
				len(rec.Revocation) > MaxRevocationSize || len(rec.Addrs) > MaxHints {
				t.Fatalf("record %+v out of bounds", rec)
			}
			recs = append(recs, rec)
			writeRecord(t, &again, rec)
		}
		again.WriteByte(recordEnd)
		back, err := readAll(&again)
		if err != nil || len(back) != len(recs) {
			t.Fatalf("written again, %d records read back (%v), want %d", len(back), err, len(recs))
		}
		for i := range recs {
			if !bytes.Equal(back[i].Certificate, recs[i].Certificate) || !bytes.Equal(back[i].Revocation, recs[i].Revocation) ||
				!sameAddrs(back[i].Addrs, recs[i].Addrs) {
				t.Fatalf("record %d read back as %+v, want %+v", i, back[i], recs[i])
			}
		}
	})
}

// writeRecord writes rec as WriteRecords does, without the end record.
func writeRecord(t *testing.T, w *bytes.Buffer, rec Record) {
	var one bytes.Buffer
	var err error
	if rec.Certificate != nil {
		err = WriteRecords(&one, []Member{{Raw: rec.Certificate, Addrs: rec.Addrs}}, nil)
	} else {
		err = WriteRecords(&one, nil, [][]byte{rec.Revocation})
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(one.Bytes()[:one.Len()-1])
}

// FuzzInvitation: any string parses or fails without a panic; the token
// of what parses parses back to the same invitation.
func FuzzInvitation(f *testing.F) {
	inv := testInvitation(f)
	f.Add(inv.String())
	inv.Addrs = nil
	f.Add(inv.String())
	f.Add("mninv2")
	f.Fuzz(func(t *testing.T, token string) {
		inv, err := ParseInvitation(token)
		if err != nil {
			return
		}
		again, err := ParseInvitation(inv.String())
		if err != nil {
			t.Fatalf("the token of a parsed invitation does not parse: %v", err)
		}
		if !sameInvitation(again, inv) {
			t.Fatalf("parsed back as %+v, want %+v", again, inv)
		}
	})
}
