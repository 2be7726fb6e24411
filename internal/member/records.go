package member

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	ma "github.com/multiformats/go-multiaddr"
)

// Records are how members pass certificates and revocations on
// (member records 1 in docs/DESIGN.md): a sequence of records, each a
// kind byte and a body, ended by kind 0.
//
//	certificate: 1, length (2 bytes), certificate, hint count (1 byte),
//	             then per hint its length (2 bytes) and multiaddr bytes
//	revocation:  2, length (2 bytes), revocation
const (
	recordEnd         = 0
	recordCertificate = 1
	recordRevocation  = 2
	maxHintLen        = 256
)

// Record is one decoded record: a certificate with its address hints,
// or a revocation. Neither is verified.
type Record struct {
	Certificate []byte
	Addrs       []ma.Multiaddr
	Revocation  []byte
}

// WriteRecords writes certs and revs, then the end.
func WriteRecords(w io.Writer, certs []Member, revs [][]byte) error {
	var b []byte
	for _, m := range certs {
		b = append(b, recordCertificate)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Raw)))
		b = append(b, m.Raw...)
		var hints [][]byte
		for _, a := range m.Addrs {
			if len(a.Bytes()) <= maxHintLen && len(hints) < MaxHints {
				hints = append(hints, a.Bytes())
			}
		}
		b = append(b, uint8(len(hints)))
		for _, h := range hints {
			b = binary.BigEndian.AppendUint16(b, uint16(len(h)))
			b = append(b, h...)
		}
	}
	for _, r := range revs {
		b = append(b, recordRevocation)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r)))
		b = append(b, r...)
	}
	b = append(b, recordEnd)
	_, err := w.Write(b)
	return err
}

// ReadRecord reads the next record: io.EOF at the end record. Any bytes
// are safe to give it: it never holds more than one record, at most
// MaxCertificateSize plus MaxHints hints of 256 bytes. A hint that is not
// a multiaddr is left out.
func ReadRecord(r io.Reader) (Record, error) {
	var kind [1]byte
	if _, err := io.ReadFull(r, kind[:]); err != nil {
		return Record{}, fmt.Errorf("member record: %w", unexpected(err))
	}
	switch kind[0] {
	case recordEnd:
		return Record{}, io.EOF
	case recordCertificate:
		c, err := readBytes(r, MaxCertificateSize, "certificate")
		if err != nil {
			return Record{}, err
		}
		rec := Record{Certificate: c}
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return Record{}, fmt.Errorf("member record: hint count: %w", unexpected(err))
		}
		if n[0] > MaxHints {
			return Record{}, fmt.Errorf("member record: %w: %d address hints, at most %d", errMalformed, n[0], MaxHints)
		}
		for range n[0] {
			h, err := readBytes(r, maxHintLen, "address hint")
			if err != nil {
				return Record{}, err
			}
			if a, err := ma.NewMultiaddrBytes(h); err == nil {
				rec.Addrs = append(rec.Addrs, a)
			}
		}
		return rec, nil
	case recordRevocation:
		b, err := readBytes(r, MaxRevocationSize, "revocation")
		return Record{Revocation: b}, err
	}
	return Record{}, fmt.Errorf("member record: %w: kind %d, want 0, 1 or 2", errMalformed, kind[0])
}

// readBytes reads a 2-byte length and that many bytes, at most max.
func readBytes(r io.Reader, max int, what string) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, fmt.Errorf("member record: %s length: %w", what, unexpected(err))
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n == 0 || n > max {
		return nil, fmt.Errorf("member record: %w: %s of %d bytes, want 1..%d", errMalformed, what, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("member record: %s: %w", what, unexpected(err))
	}
	return b, nil
}

// unexpected: a stream that ends before the end record was cut short.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
