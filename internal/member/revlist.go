package member

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxRevocations bounds a RevocationList, which revocations spread to
// every member fill: each entry costs under 100 bytes.
const MaxRevocations = 4096

// ErrListFull is returned by RevocationList.Add when it holds
// MaxRevocations entries.
var ErrListFull = errors.New("revocation list full")

type serialOf struct {
	key    Fingerprint
	serial uint64
}

// RevocationList answers whether a certificate is revoked, from the
// verified revocations added to it. It is safe for concurrent use.
type RevocationList struct {
	mu      sync.Mutex
	serials map[peer.ID]map[serialOf]struct{}
	before  map[peer.ID]time.Time // the latest time revoked before
	n       int
}

// NewRevocationList returns an empty list.
func NewRevocationList() *RevocationList {
	return &RevocationList{serials: map[peer.ID]map[serialOf]struct{}{}, before: map[peer.ID]time.Time{}}
}

// Add records a revocation, which the caller has verified
// (Trust.VerifyRevocation). A revocation already known changes nothing.
func (l *RevocationList) Add(r *Revocation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := serialOf{r.Key, r.Serial}
	_, haveSerial := l.serials[r.PeerID][s]
	before, haveBefore := l.before[r.PeerID]
	newSerial := r.Serial != 0 && !haveSerial
	newBefore := !r.Before.IsZero() && !haveBefore
	if l.n+btoi(newSerial)+btoi(newBefore) > MaxRevocations {
		return fmt.Errorf("revocation of %s: %w (%d entries)", r.PeerID, ErrListFull, MaxRevocations)
	}
	if newSerial {
		if l.serials[r.PeerID] == nil {
			l.serials[r.PeerID] = map[serialOf]struct{}{}
		}
		l.serials[r.PeerID][s] = struct{}{}
	}
	if !r.Before.IsZero() && r.Before.After(before) {
		l.before[r.PeerID] = r.Before
	}
	l.n += btoi(newSerial) + btoi(newBefore)
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Revokes reports whether a revocation on the list withdraws c.
func (l *RevocationList) Revokes(c *Certificate) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.serials[c.PeerID][serialOf{c.Key, c.Serial}]; ok {
		return true
	}
	before, ok := l.before[c.PeerID]
	return ok && c.NotBefore.Before(before)
}

// Len is the number of entries on the list.
func (l *RevocationList) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Peers are the peers the list names.
func (l *RevocationList) Peers() []peer.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := make(map[peer.ID]bool, len(l.serials)+len(l.before))
	for p := range l.serials {
		set[p] = true
	}
	for p := range l.before {
		set[p] = true
	}
	return slices.Collect(maps.Keys(set))
}
