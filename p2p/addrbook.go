package p2p

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// addrBookTTL is how long an address stays in the book after a connection
// to the peer at it last worked: long enough to reconnect without the DHT
// after a week away, short enough that stale ones age out. Staying in the
// book does not renew it: an address comes back to the peerstore for what
// is left of the week since it was last seen.
const addrBookTTL = 7 * 24 * time.Hour

// addrBookPerPeer bounds a peer's entries; the most recently seen stay.
const addrBookPerPeer = 16

// addrBookFile is the file's format.
type addrBookFile struct {
	// Addrs: peer ID → multiaddr → when a connection to the peer at that
	// address last worked.
	Addrs map[string]map[string]time.Time `json:"addrs"`
	// Peers is the format before last-seen times, read but not written:
	// peer ID → multiaddrs, which count as seen when the file was written.
	Peers map[string][]string `json:"peers,omitempty"`
}

// addrBook is the book in memory: when each address of a peer last worked.
type addrBook map[peer.ID]map[string]time.Time

// readAddrBook reads the file at path, both formats; a missing file is an
// empty book.
func readAddrBook(path string) (addrBook, error) {
	book := addrBook{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return book, nil
	}
	if err != nil {
		return book, err
	}
	var f addrBookFile
	if err := json.Unmarshal(data, &f); err != nil {
		return book, err
	}
	var written time.Time // the old format's entries count as seen then
	if len(f.Peers) > 0 {
		st, err := os.Stat(path)
		if err != nil {
			return book, err
		}
		written = st.ModTime()
	}
	for id, list := range f.Peers {
		if p, err := peer.Decode(id); err == nil {
			for _, a := range list {
				book.saw(p, a, written)
			}
		}
	}
	for id, addrs := range f.Addrs {
		if p, err := peer.Decode(id); err == nil {
			for a, seen := range addrs {
				book.saw(p, a, seen)
			}
		}
	}
	return book, nil
}

// saw records that a connection to p at a worked at t, unless the book
// has a later time.
func (b addrBook) saw(p peer.ID, a string, t time.Time) {
	if b[p] == nil {
		b[p] = map[string]time.Time{}
	}
	if t.After(b[p][a]) {
		b[p][a] = t
	}
}

// tidy drops the entries last seen addrBookTTL or more before now, and
// all but each peer's addrBookPerPeer latest. A time after now (the clock
// was set back) counts as now, so that the entry still expires.
func (b addrBook) tidy(now time.Time) {
	for p, addrs := range b {
		for a, seen := range addrs {
			if seen.After(now) {
				addrs[a] = now
			} else if now.Sub(seen) >= addrBookTTL {
				delete(addrs, a)
			}
		}
		if len(addrs) > addrBookPerPeer {
			list := slices.SortedFunc(maps.Keys(addrs), func(x, y string) int { return addrs[y].Compare(addrs[x]) })
			for _, a := range list[addrBookPerPeer:] {
				delete(addrs, a)
			}
		}
		if len(addrs) == 0 {
			delete(b, p)
		}
	}
}

// loadAddrBook puts remembered addresses of known peers into the
// peerstore, each for what is left of its week. A missing or unreadable
// file only costs a DHT lookup.
func (n *Node) loadAddrBook() {
	if n.addrBook == "" {
		return
	}
	book, err := readAddrBook(n.addrBook)
	if err != nil {
		n.log.Warn("ignoring unreadable address book", "file", n.addrBook, "err", err)
		return
	}
	now := time.Now()
	book.tidy(now)
	for p, addrs := range book {
		if !n.knows(p) {
			continue
		}
		for a, seen := range addrs {
			n.host.Peerstore().AddAddrs(p, dialable([]string{a}), addrBookTTL-now.Sub(seen))
		}
	}
}

// saveAddrBook records the remote addresses of the live connections to
// known peers as seen now, keeping what the file knew (until it expires),
// and writes the book atomically, mode 0600. Only addresses that carried
// a connection go in: the peerstore also holds addresses nobody vouched
// for (any host on the LAN can announce any peer ID over mDNS).
func (n *Node) saveAddrBook() {
	if n.addrBook == "" {
		return
	}
	n.bookMu.Lock()
	defer n.bookMu.Unlock()
	book, err := readAddrBook(n.addrBook)
	if err != nil {
		book = addrBook{} // replaced by a readable one
	}
	now := time.Now().Truncate(time.Second)
	for _, c := range n.host.Network().Conns() {
		if p := c.RemotePeer(); n.knows(p) {
			book.saw(p, c.RemoteMultiaddr().String(), now)
		}
	}
	for p := range book {
		if !n.knows(p) {
			delete(book, p)
		}
	}
	book.tidy(now)
	f := addrBookFile{Addrs: map[string]map[string]time.Time{}}
	for p, addrs := range book {
		f.Addrs[p.String()] = addrs
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(n.addrBook), ".addrbook*")
	if err != nil {
		n.log.Debug("cannot save address book", "err", err)
		return
	}
	defer os.Remove(tmp.Name())
	tmp.Chmod(0o600)
	_, werr := tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		return
	}
	os.Rename(tmp.Name(), n.addrBook)
}
