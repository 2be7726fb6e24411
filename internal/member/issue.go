package member

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/config"
)

// DefaultValidity is how long a certificate Issue signs is valid.
const DefaultValidity = 365 * 24 * time.Hour

// Issue signs a certificate for peer id under name, with the addresses
// its ID derives, allowed to serve routes, valid from now for validity,
// under a random serial. It returns the certificate and its encoding.
func Issue(key crypto.PrivKey, id peer.ID, name string, routes []netip.Prefix, now time.Time, validity time.Duration) (*Certificate, []byte, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, fmt.Errorf("certificate serial: %w", err)
	}
	a := config.AddressesOf(id)
	c := &Certificate{
		Serial: binary.BigEndian.Uint64(b[:]) | 1, NotBefore: now.Truncate(time.Second),
		NotAfter: now.Add(validity).Truncate(time.Second), PeerID: id, Name: name,
		IPv4: a.IPv4, IPv6: a.IPv6, Routes: routes,
	}
	if err := c.Sign(key); err != nil {
		return nil, nil, err
	}
	raw, err := c.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return c, raw, nil
}
