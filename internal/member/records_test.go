package member

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// readAll reads records until the end record or an error.
func readAll(r io.Reader) ([]Record, error) {
	var out []Record
	for {
		rec, err := ReadRecord(r)
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

// testRecords are two certificates, one with address hints, and two
// revocations, encoded.
func testRecords(tb testing.TB) ([]Member, [][]byte, []byte) {
	tb.Helper()
	key := testKey(tb, 1)
	_, amy := peerCert(tb, key, 101, "amy", now, 1)
	_, bob := peerCert(tb, key, 102, "bob", now, 2)
	certs := []Member{
		{Raw: amy, Addrs: addrs(tb, "/ip4/192.0.2.1/udp/4001/quic-v1", "/ip6/2001:db8::1/tcp/4001")},
		{Raw: bob},
	}
	revs := [][]byte{
		marshalled(tb, testRevocation(tb, key, testPeer(tb, 103), 5, time.Time{})),
		marshalled(tb, testRevocation(tb, key, testPeer(tb, 104), 0, now)),
	}
	var b bytes.Buffer
	if err := WriteRecords(&b, certs, revs); err != nil {
		tb.Fatal(err)
	}
	return certs, revs, b.Bytes()
}

func TestRecords(t *testing.T) {
	certs, revs, stream := testRecords(t)
	got, err := readAll(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(certs)+len(revs) {
		t.Fatalf("read %d records, want %d", len(got), len(certs)+len(revs))
	}
	for i, m := range certs {
		if !bytes.Equal(got[i].Certificate, m.Raw) || got[i].Revocation != nil || !sameAddrs(got[i].Addrs, m.Addrs) {
			t.Errorf("record %d = %+v, want the certificate %d with its hints %v", i, got[i], i, m.Addrs)
		}
	}
	for i, r := range revs {
		if g := got[len(certs)+i]; !bytes.Equal(g.Revocation, r) || g.Certificate != nil {
			t.Errorf("record %d = %+v, want the revocation %d", len(certs)+i, g, i)
		}
	}

	// Nothing but the end: no records.
	if got, err := readAll(bytes.NewReader([]byte{0})); len(got) != 0 || err != nil {
		t.Errorf("the end alone: %v, %v", got, err)
	}

	// A stream cut anywhere before its end record was cut short.
	for n := range len(stream) {
		if _, err := readAll(bytes.NewReader(stream[:n])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut to %d of %d bytes: %v, want %v", n, len(stream), err, io.ErrUnexpectedEOF)
		}
	}
}

// TestRecordsHints: a writer sends at most MaxHints hints, and a reader
// leaves out one that is not a multiaddr.
func TestRecordsHints(t *testing.T) {
	_, raw := peerCert(t, testKey(t, 1), 101, "amy", now, 1)
	many := addrs(t, "/ip4/192.0.2.1/tcp/1", "/ip4/192.0.2.1/tcp/2", "/ip4/192.0.2.1/tcp/3", "/ip4/192.0.2.1/tcp/4",
		"/ip4/192.0.2.1/tcp/5", "/ip4/192.0.2.1/tcp/6", "/ip4/192.0.2.1/tcp/7", "/ip4/192.0.2.1/tcp/8", "/ip4/192.0.2.1/tcp/9")
	var b bytes.Buffer
	if err := WriteRecords(&b, []Member{{Raw: raw, Addrs: many}}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(&b); err != nil || len(got) != 1 || !sameAddrs(got[0].Addrs, many[:MaxHints]) {
		t.Errorf("read %+v, %v; want the certificate with the first %d hints", got, err, MaxHints)
	}

	hint := many[0].Bytes()
	in := append(cert(raw), 2)              // two hints:
	in = append(in, 0, 3, 0xff, 0xff, 0xff) // three bytes that are no multiaddr,
	in = binary.BigEndian.AppendUint16(in, uint16(len(hint)))
	in = append(in, hint...) // and one that is
	got, err := readAll(bytes.NewReader(append(in, 0)))
	if err != nil || len(got) != 1 || !sameAddrs(got[0].Addrs, many[:1]) {
		t.Errorf("read %+v, %v; want the certificate with the one hint that is a multiaddr", got, err)
	}
}

// cert is a certificate record's start: kind, length and certificate.
func cert(raw []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{recordCertificate}, uint16(len(raw))), raw...)
}

func TestRecordsMalformed(t *testing.T) {
	_, raw := peerCert(t, testKey(t, 1), 101, "amy", now, 1)
	length := func(kind byte, n int) []byte { return binary.BigEndian.AppendUint16([]byte{kind}, uint16(n)) }
	tests := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"kind 9", []byte{9}, "member record: malformed: kind 9, want 0, 1 or 2"},
		{"empty certificate", length(recordCertificate, 0), "certificate of 0 bytes, want 1..2048"},
		{"certificate too long", length(recordCertificate, MaxCertificateSize+1), "certificate of 2049 bytes, want 1..2048"},
		{"revocation too long", length(recordRevocation, MaxRevocationSize+1), "revocation of 257 bytes, want 1..256"},
		{"longest length", length(recordRevocation, 0xffff), "revocation of 65535 bytes, want 1..256"},
		{"too many hints", append(cert(raw), MaxHints+1), "9 address hints, at most 8"},
		{"hint too long", append(append(cert(raw), 1), 1, 1), "address hint of 257 bytes, want 1..256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Followed by enough bytes that only the length can fail.
			in := append(bytes.Clone(tt.in), make([]byte, 1<<16)...)
			_, err := ReadRecord(bytes.NewReader(in))
			if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ReadRecord = %v, want %q", err, tt.msg)
			}
		})
	}
}
