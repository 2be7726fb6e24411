package member

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// certMagic begins every certificate 1: it is signed too, so a signature
// on a certificate can never pass for one on a revocation.
var certMagic = []byte("mync\x01")

// Certificate is a mesh key's statement that a peer is a member: under
// this name and these addresses, allowed to serve these routes, for this
// time. The signature covers everything else in it, as encoded.
type Certificate struct {
	Serial    uint64
	NotBefore time.Time // whole seconds: the encoding has no finer grain
	NotAfter  time.Time
	PeerID    peer.ID
	Name      string
	IPv4      netip.Addr
	IPv6      netip.Addr
	Routes    []netip.Prefix
	Key       Fingerprint // the mesh key that signed it
	Signature []byte
}

// body encodes everything the signature covers; it fails on what the
// encoding cannot hold, which a decoder would refuse.
func (c *Certificate) body() ([]byte, error) {
	switch {
	case len(c.PeerID) == 0 || len(c.PeerID) > MaxPeerIDLen:
		return nil, fmt.Errorf("peer ID of %d bytes, want 1..%d", len(c.PeerID), MaxPeerIDLen)
	case len(c.Name) == 0 || len(c.Name) > 255:
		return nil, fmt.Errorf("name of %d bytes, want 1..255", len(c.Name))
	case !c.IPv4.Is4() || !c.IPv6.Is6() || c.IPv6.Zone() != "":
		return nil, fmt.Errorf("addresses %s and %s are not an IPv4 and an IPv6 address", c.IPv4, c.IPv6)
	case len(c.Routes) > MaxRoutes:
		return nil, fmt.Errorf("%d routes, at most %d", len(c.Routes), MaxRoutes)
	}
	w := &writer{b: make([]byte, 0, 256)}
	w.raw(certMagic)
	w.u64(c.Serial)
	w.time(c.NotBefore)
	w.time(c.NotAfter)
	w.short([]byte(c.PeerID))
	w.short([]byte(c.Name))
	w.raw(c.IPv4.AsSlice())
	w.raw(c.IPv6.AsSlice())
	w.u8(uint8(len(c.Routes)))
	for i, r := range c.Routes {
		if !r.IsValid() || r.Addr().Zone() != "" {
			return nil, fmt.Errorf("route %d (%s) is not a prefix", i, r)
		}
		w.prefix(r)
	}
	w.raw(c.Key[:])
	return w.b, nil
}

// sign sets *fp to the key's fingerprint, then signs what body encodes
// (fp among it).
func sign(key crypto.PrivKey, fp *Fingerprint, body func() ([]byte, error)) ([]byte, error) {
	var err error
	if *fp, err = FingerprintOf(key.GetPublic()); err != nil {
		return nil, err
	}
	b, err := body()
	if err != nil {
		return nil, err
	}
	return key.Sign(b)
}

// marshalSigned is the encoding of body followed by its signature.
func marshalSigned(body func() ([]byte, error), sig []byte) ([]byte, error) {
	if len(sig) != sigLen {
		return nil, fmt.Errorf("signature of %d bytes, want %d: is it signed?", len(sig), sigLen)
	}
	b, err := body()
	if err != nil {
		return nil, err
	}
	return append(b, sig...), nil
}

// Sign fills in the key's fingerprint and signs the certificate.
func (c *Certificate) Sign(key crypto.PrivKey) error {
	sig, err := sign(key, &c.Key, c.body)
	if err != nil {
		return fmt.Errorf("sign certificate of %s: %w", c.PeerID, err)
	}
	c.Signature = sig
	return nil
}

// Marshal encodes a signed certificate (member certificate 1 in
// docs/DESIGN.md).
func (c *Certificate) Marshal() ([]byte, error) {
	b, err := marshalSigned(c.body, c.Signature)
	if err != nil {
		return nil, fmt.Errorf("encode certificate of %s: %w", c.PeerID, err)
	}
	return b, nil
}

// ParseCertificate decodes a certificate without verifying it. Any bytes
// are safe to give it: it reads at most MaxCertificateSize of them and
// accepts only the one encoding Marshal writes.
func ParseCertificate(b []byte) (*Certificate, error) {
	if len(b) > MaxCertificateSize {
		return nil, fmt.Errorf("decode certificate: %w: %d bytes, at most %d", errMalformed, len(b), MaxCertificateSize)
	}
	r := &reader{b: b}
	if m := r.take(len(certMagic), "magic"); r.err == nil && string(m) != string(certMagic) {
		r.fail("not a member certificate 1 (starts %x)", m)
	}
	c := &Certificate{Serial: r.u64("serial"), NotBefore: r.time("not before"), NotAfter: r.time("not after")}
	c.PeerID = r.peerID("peer ID")
	c.Name = string(r.short("name", 255))
	c.IPv4, _ = netip.AddrFromSlice(r.take(4, "IPv4 address"))
	c.IPv6, _ = netip.AddrFromSlice(r.take(16, "IPv6 address"))
	n := int(r.u8("route count"))
	if r.err == nil && n > MaxRoutes {
		r.fail("%d routes, at most %d", n, MaxRoutes)
	}
	for i := 0; i < n && r.err == nil; i++ {
		c.Routes = append(c.Routes, r.prefix(fmt.Sprintf("route %d", i)))
	}
	copy(c.Key[:], r.take(len(c.Key), "mesh key fingerprint"))
	c.Signature = r.take(sigLen, "signature")
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("decode certificate: %w", err)
	}
	return c, nil
}
