package p2p

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestAddrBookKeepsOnlyAddrsThatWorked: an address planted in the
// peerstore (as any host can over mDNS) that never carried a connection
// is not saved; the connection's address is.
func TestAddrBookKeepsOnlyAddrsThatWorked(t *testing.T) {
	book := filepath.Join(t.TempDir(), "addrs.json")
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	b := newNode(t, Options{Key: kb, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: ida}}, MaxPacket: 1500})
	a := newNode(t, Options{Key: ka, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: idb, Addrs: b.host.Addrs()}}, MaxPacket: 1500, AddrBook: book})
	start(t, a, b)
	p2ptest.Eventually(t, "connection", func() bool { return a.State(idb).Connected })
	planted := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	a.host.Peerstore().AddAddrs(idb, []ma.Multiaddr{planted}, peerstore.TempAddrTTL)
	a.saveAddrBook()

	data, err := os.ReadFile(book)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), planted.String()) {
		t.Errorf("the book keeps an address that carried no connection:\n%s", data)
	}
	if used := a.State(idb).Addr.String(); !strings.Contains(string(data), used) {
		t.Errorf("the book misses the connection's address %s:\n%s", used, data)
	}
}

// TestAddrBookForgetsOldAddrs: addresses last seen a week ago or more are
// dropped on load; newer ones are loaded, and saving does not renew them.
// Files of the format before last-seen times are read, their addresses
// dated by the file's modification time.
func TestAddrBookForgetsOldAddrs(t *testing.T) {
	ka, _ := p2ptest.NewKey(t)
	_, idb := p2ptest.NewKey(t)
	addr := "/ip4/127.0.0.1/tcp/4001"
	now := time.Now().Truncate(time.Second)
	for _, c := range []struct {
		name   string
		file   string
		ago    time.Duration // since last seen, or since the file was written
		loaded bool
	}{
		{"seen a day ago", `{"addrs": {"%id": {"%addr": "%seen"}}}`, 24 * time.Hour, true},
		{"seen 8 days ago", `{"addrs": {"%id": {"%addr": "%seen"}}}`, 8 * 24 * time.Hour, false},
		{"earlier format, written a day ago", `{"peers": {"%id": ["%addr"]}}`, 24 * time.Hour, true},
		{"earlier format, written 8 days ago", `{"peers": {"%id": ["%addr"]}}`, 8 * 24 * time.Hour, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			seen := now.Add(-c.ago)
			book := filepath.Join(t.TempDir(), "addrs.json")
			text := strings.NewReplacer("%id", idb.String(), "%addr", addr, "%seen", seen.Format(time.RFC3339)).Replace(c.file)
			if err := os.WriteFile(book, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(book, seen, seen)
			a := newNode(t, Options{Key: ka, Peers: []Peer{{ID: idb}}, MaxPacket: 1500, AddrBook: book})
			got := slices.ContainsFunc(a.host.Peerstore().Addrs(idb), func(a ma.Multiaddr) bool { return a.String() == addr })
			if got != c.loaded {
				t.Fatalf("address loaded: %v, want %v", got, c.loaded)
			}

			a.saveAddrBook()
			var f struct {
				Addrs map[string]map[string]time.Time
			}
			data, _ := os.ReadFile(book)
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			saved, ok := f.Addrs[idb.String()][addr]
			if ok != c.loaded || ok && !saved.Equal(seen) {
				t.Errorf("saved as seen at %v (kept: %v), want %v (kept: %v):\n%s", saved, ok, seen, c.loaded, data)
			}
		})
	}
}
