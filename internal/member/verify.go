package member

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"

	"github.com/mynetwork/mynetwork/config"
)

// ClockSkew is how far apart two members' clocks may be and still agree
// that a certificate is valid. Machines without NTP drift by minutes, and
// a certificate signed on a fast clock must not be refused for minutes
// by a node on a slow one; five minutes covers that while it lets an
// expired certificate live only five minutes longer. Revocation does not
// depend on clocks (see Revocation).
const ClockSkew = 5 * time.Minute

// Errors of verification, wrapped with the certificate and the detail;
// errors.Is tells them apart.
var (
	ErrExpired         = errors.New("expired")
	ErrNotYetValid     = errors.New("not yet valid")
	ErrUnknownKey      = errors.New("signed by an unknown mesh key")
	ErrBadSignature    = errors.New("bad signature")
	ErrInvalidName     = errors.New("name invalid")
	ErrAddressMismatch = errors.New("addresses do not match the peer ID")
	ErrInvalidRoute    = errors.New("route invalid")
	ErrRevoked         = errors.New("revoked")
)

// Trust is the set of mesh keys a node accepts certificates from, and the
// revocations it has heard.
type Trust struct {
	keys    map[Fingerprint]crypto.PubKey
	Revoked *RevocationList // nil: none heard
}

// NewTrust trusts the given mesh keys.
func NewTrust(keys ...crypto.PubKey) (*Trust, error) {
	t := &Trust{keys: make(map[Fingerprint]crypto.PubKey, len(keys))}
	for _, k := range keys {
		if k.Type() != pb.KeyType_Ed25519 {
			return nil, fmt.Errorf("trust mesh key: %w", errNotEd25519)
		}
		fp, err := FingerprintOf(k)
		if err != nil {
			return nil, err
		}
		t.keys[fp] = k
	}
	return t, nil
}

// Trusts says whether the mesh key fp is trusted.
func (t *Trust) Trusts(fp Fingerprint) bool {
	_, ok := t.keys[fp]
	return ok
}

// checkSignature verifies that a trusted key signed body with sig.
func (t *Trust) checkSignature(fp Fingerprint, body, sig []byte) error {
	k, ok := t.keys[fp]
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownKey, fp)
	}
	if good, err := k.Verify(body, sig); err != nil || !good {
		return fmt.Errorf("%w from mesh key %s", ErrBadSignature, fp)
	}
	return nil
}

// Verify checks a certificate at time now: signed by a trusted key, valid
// then (give or take ClockSkew), its name a valid peer name, its
// addresses those of its peer ID, its routes ones a config could hold,
// and not revoked. It does not check that the peer showing it is the
// peer it names: the caller knows who is on the other end.
func (t *Trust) Verify(c *Certificate, now time.Time) error {
	if err := t.verify(c, now); err != nil {
		return fmt.Errorf("certificate %d of %s: %w", c.Serial, c.PeerID, err)
	}
	return nil
}

func (t *Trust) verify(c *Certificate, now time.Time) error {
	body, err := c.body()
	if err != nil {
		return err
	}
	if err := t.checkSignature(c.Key, body, c.Signature); err != nil {
		return err
	}
	switch {
	case now.Add(ClockSkew).Before(c.NotBefore):
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, c.NotBefore.Format(time.RFC3339))
	case !now.Add(-ClockSkew).Before(c.NotAfter):
		return fmt.Errorf("%w at %s", ErrExpired, c.NotAfter.Format(time.RFC3339))
	case !config.ValidName(c.Name):
		return fmt.Errorf("%w: %q: use letters, digits and inner dashes, at most 63", ErrInvalidName, c.Name)
	}
	if want := config.AddressesOf(c.PeerID); c.IPv4 != want.IPv4 || c.IPv6 != want.IPv6 {
		return fmt.Errorf("%w: %s and %s, the peer ID gives %s and %s", ErrAddressMismatch, c.IPv4, c.IPv6, want.IPv4, want.IPv6)
	}
	for _, r := range c.Routes {
		if _, err := config.ParseRoute(r.String()); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidRoute, err)
		}
	}
	if t.Revoked != nil && t.Revoked.Revokes(c) {
		return ErrRevoked
	}
	return nil
}
