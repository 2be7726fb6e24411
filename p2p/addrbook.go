package p2p

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// addrBookTTL is how long remembered addresses stay in the peerstore after a
// restart: long enough to reconnect without the DHT, short enough that stale
// ones age out.
const addrBookTTL = 7 * 24 * time.Hour

// addrBookFile is the file's format: peer ID → multiaddrs that worked.
type addrBookFile struct {
	Peers map[string][]string `json:"peers"`
}

// loadAddrBook puts remembered addresses of configured peers and relays
// into the peerstore. A missing or unreadable file only costs a DHT lookup.
func (n *Node) loadAddrBook() {
	if n.addrBook == "" {
		return
	}
	data, err := os.ReadFile(n.addrBook)
	if err != nil {
		return
	}
	var f addrBookFile
	if err := json.Unmarshal(data, &f); err != nil {
		n.log.Warn("ignoring unreadable address book", "file", n.addrBook, "err", err)
		return
	}
	for id, list := range f.Peers {
		p, err := peer.Decode(id)
		if err != nil || !n.knows(p) {
			continue
		}
		n.host.Peerstore().AddAddrs(p, dialable(list), addrBookTTL)
	}
}

// saveAddrBook writes the addresses of the live connections to configured
// peers, relays and bootstrap peers, keeping what the file knew of peers
// not connected now. It writes atomically, mode 0600.
func (n *Node) saveAddrBook() {
	if n.addrBook == "" {
		return
	}
	n.bookMu.Lock()
	defer n.bookMu.Unlock()
	f := addrBookFile{Peers: map[string][]string{}}
	if data, err := os.ReadFile(n.addrBook); err == nil {
		json.Unmarshal(data, &f)
		if f.Peers == nil {
			f.Peers = map[string][]string{}
		}
	}
	for _, p := range n.host.Network().Peers() {
		if !n.knows(p) {
			continue
		}
		var list []string
		for _, c := range n.host.Network().ConnsToPeer(p) {
			list = append(list, c.RemoteMultiaddr().String())
		}
		for _, a := range n.host.Peerstore().Addrs(p) {
			list = append(list, a.String())
		}
		sort.Strings(list)
		f.Peers[p.String()] = compact(list)
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

func compact(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}
