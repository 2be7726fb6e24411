package member

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// revMagic begins every revocation 1 (see certMagic).
var revMagic = []byte("mynr\x01")

// MaxRevocationSize bounds an encoded revocation.
const MaxRevocationSize = 256

// Revocation withdraws a peer's certificates: the one with Serial from
// the same mesh key, or, with Before set, every certificate of the peer
// whose NotBefore is earlier, from any trusted key. Neither compares
// anything with a member's clock: both name certificates by what the
// signers wrote in them, so a revocation takes effect the moment it is
// heard, however wrong the clock, and does not expire.
type Revocation struct {
	PeerID    peer.ID
	Serial    uint64    // 0: no single certificate
	Before    time.Time // zero: no time
	Issued    time.Time // when it was signed, for people reading it
	Key       Fingerprint
	Signature []byte
}

func (r *Revocation) body() ([]byte, error) {
	switch {
	case len(r.PeerID) == 0 || len(r.PeerID) > MaxPeerIDLen:
		return nil, fmt.Errorf("peer ID of %d bytes, want 1..%d", len(r.PeerID), MaxPeerIDLen)
	case r.Serial == 0 && unixOf(r.Before) == 0:
		return nil, errRevokesNothing
	}
	w := &writer{b: make([]byte, 0, 128)}
	w.raw(revMagic)
	w.short([]byte(r.PeerID))
	w.u64(r.Serial)
	w.time(r.Before)
	w.time(r.Issued)
	w.raw(r.Key[:])
	return w.b, nil
}

var errRevokesNothing = errors.New("it revokes nothing: give a serial or a time")

// Sign fills in the key's fingerprint and signs the revocation.
func (r *Revocation) Sign(key crypto.PrivKey) error {
	sig, err := sign(key, &r.Key, r.body)
	if err != nil {
		return fmt.Errorf("sign revocation of %s: %w", r.PeerID, err)
	}
	r.Signature = sig
	return nil
}

// Marshal encodes a signed revocation (member revocation 1 in
// docs/DESIGN.md).
func (r *Revocation) Marshal() ([]byte, error) {
	b, err := marshalSigned(r.body, r.Signature)
	if err != nil {
		return nil, fmt.Errorf("encode revocation of %s: %w", r.PeerID, err)
	}
	return b, nil
}

// ParseRevocation decodes a revocation without verifying it; any bytes
// are safe to give it.
func ParseRevocation(b []byte) (*Revocation, error) {
	if len(b) > MaxRevocationSize {
		return nil, fmt.Errorf("decode revocation: %w: %d bytes, at most %d", errMalformed, len(b), MaxRevocationSize)
	}
	rd := &reader{b: b}
	if m := rd.take(len(revMagic), "magic"); rd.err == nil && string(m) != string(revMagic) {
		rd.fail("not a member revocation 1 (starts %x)", m)
	}
	r := &Revocation{PeerID: rd.peerID("peer ID"), Serial: rd.u64("serial"), Before: rd.time("before")}
	r.Issued = rd.time("issued")
	copy(r.Key[:], rd.take(len(r.Key), "mesh key fingerprint"))
	r.Signature = rd.take(sigLen, "signature")
	if rd.err == nil && r.Serial == 0 && r.Before.IsZero() {
		rd.fail("%v", errRevokesNothing)
	}
	if err := rd.end(); err != nil {
		return nil, fmt.Errorf("decode revocation: %w", err)
	}
	return r, nil
}

// VerifyRevocation checks that a trusted mesh key signed r. Only then
// may it go on a RevocationList: anyone could write one.
func (t *Trust) VerifyRevocation(r *Revocation) error {
	body, err := r.body()
	if err == nil {
		err = t.checkSignature(r.Key, body, r.Signature)
	}
	if err != nil {
		return fmt.Errorf("revocation of %s: %w", r.PeerID, err)
	}
	return nil
}
