package member

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of the encodings: a decoder reads nothing larger, so hostile
// bytes cost at most this much memory.
const (
	// MaxPeerIDLen is above every libp2p peer ID in use (an inlined
	// Ed25519 or secp256k1 key is under 40 bytes, a hash 34).
	MaxPeerIDLen = 64
	// MaxRoutes is the most routes one certificate may allow.
	MaxRoutes = 64
	// MaxCertificateSize bounds an encoded certificate; the largest
	// possible one (every field at its limit) is under it.
	MaxCertificateSize = 2048
	sigLen             = 64
)

// errMalformed is what every decoding failure wraps.
var errMalformed = errors.New("malformed")

// writer appends big-endian fields.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)       { w.b = append(w.b, v) }
func (w *writer) u64(v uint64)     { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) time(t time.Time) { w.u64(uint64(unixOf(t))) }
func (w *writer) raw(p []byte)     { w.b = append(w.b, p...) }

// short writes a byte string with a 1-byte length.
func (w *writer) short(p []byte) { w.u8(uint8(len(p))); w.raw(p) }

// prefix writes a route: its family (4 or 6), address and length.
func (w *writer) prefix(p netip.Prefix) {
	if p.Addr().Is4() {
		w.u8(4)
	} else {
		w.u8(6)
	}
	w.raw(p.Addr().AsSlice())
	w.u8(uint8(p.Bits()))
}

// unixOf is the encoded form of a time: whole seconds, with the zero
// time as 0 (time.Time's zero is not the Unix epoch).
func unixOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// reader consumes big-endian fields; after the first error it reads
// nothing more and keeps that error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
	}
}

// take returns the next n bytes, or nil when there are fewer.
func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("%s: %d bytes left, %d needed", what, len(r.b), n)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8(what string) uint8 {
	if p := r.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if p := r.take(8, what); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *reader) time(what string) time.Time {
	s := int64(r.u64(what))
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// short reads a byte string of at most max bytes with a 1-byte length.
func (r *reader) short(what string, max int) []byte {
	n := int(r.u8(what + " length"))
	if r.err == nil && (n == 0 || n > max) {
		r.fail("%s: length %d, want 1..%d", what, n, max)
	}
	return r.take(n, what)
}

func (r *reader) peerID(what string) peer.ID {
	p := r.short(what, MaxPeerIDLen)
	if r.err != nil {
		return ""
	}
	id, err := peer.IDFromBytes(p)
	if err != nil {
		r.fail("%s: %v", what, err)
	}
	return id
}

func (r *reader) prefix(what string) netip.Prefix {
	var n int
	switch fam := r.u8(what + " family"); {
	case r.err != nil:
		return netip.Prefix{}
	case fam == 4:
		n = 4
	case fam == 6:
		n = 16
	default:
		r.fail("%s: family %d, want 4 or 6", what, fam)
		return netip.Prefix{}
	}
	addr, _ := netip.AddrFromSlice(r.take(n, what))
	bits := int(r.u8(what + " length"))
	p := netip.PrefixFrom(addr, bits)
	if r.err == nil && !p.IsValid() {
		r.fail("%s: length %d is too long for %s", what, bits, addr)
	}
	return p
}

// end fails unless every byte was read: a certificate has one encoding.
func (r *reader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	return r.err
}
