package limits

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
)

// knownLimiter gives the peers known now libp2p's per-peer limits and
// everyone else a stranger's: rcmgr asks when it makes a peer's scope,
// which it drops a while after the peer's last connection and stream.
type knownLimiter struct {
	rcmgr.Limiter
	known func(peer.ID) bool
	peer  rcmgr.Limit
}

func (l knownLimiter) GetPeerLimits(p peer.ID) rcmgr.Limit {
	if l.known(p) {
		return l.peer
	}
	return l.Limiter.GetPeerLimits(p)
}

// anywhere are the allowlist's entries for p: any IPv4 or IPv6 address.
func anywhere(p peer.ID) ([]ma.Multiaddr, error) {
	var out []ma.Multiaddr
	for _, any := range []string{"/ip4/0.0.0.0/ipcidr/0", "/ip6/::/ipcidr/0"} {
		a, err := ma.NewMultiaddr(any + "/p2p/" + p.String())
		if err != nil {
			return nil, fmt.Errorf("allowlist %s: %w", p, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Manager is the resource manager NewResourceManager makes, with its
// known peers changeable at run time.
type Manager struct {
	network.ResourceManager
	lim knownLimiter
}

// SetKnown makes p a known peer, or a stranger again: the allowlist, and
// the limits of p's scope if it has one now (a peer added while connected
// as a stranger keeps its connection). The isKnown given to
// NewResourceManager must already say the same.
func (m *Manager) SetKnown(p peer.ID, known bool) error {
	r, ok := m.ResourceManager.(interface{ GetAllowlist() *rcmgr.Allowlist })
	if !ok {
		return errors.New("resource manager has no allowlist")
	}
	as, err := anywhere(p)
	if err != nil {
		return err
	}
	for _, a := range as {
		if known {
			err = errors.Join(err, r.GetAllowlist().Add(a))
		} else {
			err = errors.Join(err, r.GetAllowlist().Remove(a))
		}
	}
	if err != nil {
		return fmt.Errorf("allowlist %s: %w", p, err)
	}
	return m.ViewPeer(p, func(s network.PeerScope) error {
		if sl, ok := s.(rcmgr.ResourceScopeLimiter); ok {
			sl.SetLimit(m.lim.GetPeerLimits(p))
		}
		return nil
	})
}
