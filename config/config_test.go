package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
)

// testKey returns a deterministic identity for a seed string.
func testKey(t testing.TB, seed string) (string, peer.ID) {
	t.Helper()
	s := sha256.Sum256([]byte(seed))
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(s[:]))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := crypto.MarshalPrivateKey(k)
	enc, _ := multibase.Encode(multibase.Base58BTC, raw)
	id, _ := peer.IDFromPrivateKey(k)
	return enc, id
}

func TestAddressVectors(t *testing.T) {
	// These pin the derivation documented in the README; another
	// implementation must reproduce them exactly.
	vectors := []struct{ id, v4, v6 string }{
		{"12D3KooWRdFFg3yTbTsDq5Z1yCvCWbqznEFro9jeVivo7rkayJ4D", "100.64.233.127", "fd6d:796e:6574:0:a979:f69c:779a:bae3"},
		{"12D3KooWGSrXQQXYp31AUbZ64eJMb3hGywN4dmzpaZW3rWW22EfF", "100.64.96.86", "fd6d:796e:6574:0:9000:2fa9:505f:c206"},
		{"12D3KooWC7B5sWzvb142fJ4LjuB4umpgHQahwQpeduPgnQgwD4Sv", "100.64.250.134", "fd6d:796e:6574:0:54c7:5ac1:2b39:3c80"},
		{"12D3KooWDakkm3dvfLNiTszbMbNmnQaGqVEEcSMJ5RQnhCUCYifx", "100.64.128.30", "fd6d:796e:6574:0:f1f3:3674:fc22:aa91"},
	}
	for _, v := range vectors {
		id, err := peer.Decode(v.id)
		if err != nil {
			t.Fatal(err)
		}
		a := AddressesOf(id)
		if a.IPv4.String() != v.v4 || a.IPv6.String() != v.v6 {
			t.Errorf("%s: got %s %s, want %s %s", v.id, a.IPv4, a.IPv6, v.v4, v.v6)
		}
	}
}

func TestAddressNeverNetworkOrBroadcast(t *testing.T) {
	for i := range 2000 {
		_, id := testKey(t, fmt.Sprint("n", i))
		a := AddressesOf(id).IPv4.As4()
		if !MeshPrefix4.Contains(AddressesOf(id).IPv4) || (a[2] == 0 && a[3] == 0) || (a[2] == 255 && a[3] == 255) {
			t.Fatalf("bad address %v", a)
		}
	}
}

// collidingPair finds two deterministic identities whose IPv4 addresses collide.
func collidingPair(t *testing.T) (peer.ID, peer.ID, string) {
	seen := map[[4]byte]peer.ID{}
	for i := 0; ; i++ {
		key, id := testKey(t, fmt.Sprint("c", i))
		a := AddressesOf(id).IPv4.As4()
		if other, ok := seen[a]; ok {
			return other, id, key
		}
		seen[a] = id
	}
}

func doc(t *testing.T, v map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseErrors(t *testing.T) {
	key, self := testKey(t, "self")
	_, p1 := testKey(t, "p1")
	_, p2 := testKey(t, "p2")
	c1, c2, c2key := collidingPair(t)

	tests := []struct {
		name string
		doc  string
		want []string // each must appear in the error
	}{
		{"not json", `{"privateKey": `, []string{"not valid JSON"}},
		{"trailing", `{} {}`, []string{"trailing data"}},
		{"unknown top-level key", `{"privateKey":"` + key + `","peers":[],"colour":"red"}`,
			[]string{`colour: unknown key "colour" in the top level`}},
		{"unknown peer key and wrong type at once",
			`{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `","nick":"x"}],"mdns":"yes"}`,
			[]string{`peers[0].nick: unknown key "nick" in peers[0]`, `mdns: must be true or false, not the string "yes"`}},
		{"unknown route key", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `","routes":[{"cidr":"10.0.0.0/8"}]}]}`,
			[]string{`peers[0].routes[0].cidr: unknown key "cidr"`}},
		{"peers not a list", `{"privateKey":"` + key + `","peers":{}}`, []string{"peers: must be a list, not an object"}},
		{"idle timeout too short", `{"privateKey":"` + key + `","peers":[],"idleTimeout":"1s"}`,
			[]string{`idleTimeout: "1s" is neither a duration of 5s or more (like "10m") nor "never"`}},
		{"idle timeout not a duration", `{"privateKey":"` + key + `","peers":[],"idleTimeout":"always"}`,
			[]string{`idleTimeout: "always" is neither a duration`}},
		{"missing key", `{"peers":[]}`, []string{"privateKey: missing"}},
		{"bad key", `{"privateKey":"zzzz","peers":[]}`, []string{"privateKey: privateKey is not a libp2p private key"}},
		{"bad peer id", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"QmNotAnID"}]}`,
			[]string{`peers[0].id: "QmNotAnID" is not a peer ID`}},
		{"missing id and name", `{"privateKey":"` + key + `","peers":[{}]}`,
			[]string{"peers[0].name: missing", "peers[0].id: missing"}},
		{"bad name", `{"privateKey":"` + key + `","peers":[{"name":"a b","id":"` + p1.String() + `"}]}`,
			[]string{`peers[0].name: "a b" is not a valid name`}},
		{"self as peer", `{"privateKey":"` + key + `","peers":[{"name":"me","id":"` + self.String() + `"}]}`,
			[]string{`peers[0].id: "` + self.String() + `" is this node's own peer ID`}},
		{"duplicate id and name", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `"},{"name":"a","id":"` + p1.String() + `"}]}`,
			[]string{`peers[1].name: "a" is also the name of peers[0]`, `peers[1].id: "` + p1.String() + `" is also the ID of peers[0]`}},
		{"colliding peers", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + c1.String() + `"},{"name":"b","id":"` + c2.String() + `"}]}`,
			[]string{"peers[1].id: peer " + c2.String() + " derives the address " + AddressesOf(c2).IPv4.String() + ", the same as peer " + c1.String() + " at peers[0].id"}},
		{"peer colliding with self", `{"privateKey":"` + c2key + `","peers":[{"name":"a","id":"` + c1.String() + `"}]}`,
			[]string{"peers[0].id: peer " + c1.String() + " derives the address", "the same as this node (" + c2.String() + ") at privateKey"}},
		{"bad cidr", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `","routes":[{"net":"10.1.2.0/33"}]}]}`,
			[]string{`peers[0].routes[0].net: "10.1.2.0/33" is not a CIDR`}},
		{"host bits", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `","routes":[{"net":"10.1.2.3/24"}]}]}`,
			[]string{`peers[0].routes[0].net: "10.1.2.3/24" has host bits set: did you mean 10.1.2.0/24?`}},
		{"mesh overlap", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `","routes":[{"net":"100.64.0.0/10"}]}]}`,
			[]string{`peers[0].routes[0].net: "100.64.0.0/10" overlaps the mesh's own range 100.64.0.0/16`}},
		{"duplicate route", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `","routes":[{"net":"10.1.0.0/16"}]},{"name":"b","id":"` + p2.String() + `","routes":[{"net":"10.1.0.0/16"}]}]}`,
			[]string{`peers[1].routes[0].net: 10.1.0.0/16 is already routed at peers[0].routes[0].net`}},
		{"served route not a CIDR", `{"privateKey":"` + key + `","routes":[{"net":"192.168.1.0/40"}],"peers":[]}`,
			[]string{`routes[0].net: "192.168.1.0/40" is not a CIDR`}},
		{"peer route this node serves", `{"privateKey":"` + key + `","routes":[{"net":"10.1.0.0/16"}],"peers":[{"name":"a","id":"` + p1.String() + `","routes":[{"net":"10.1.0.0/16"}]}]}`,
			[]string{`peers[0].routes[0].net: 10.1.0.0/16 is already routed at routes[0].net`}},
		{"bad peer multiaddr", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `","addrs":["10.0.0.1:8001"]}]}`,
			[]string{`peers[0].addrs[0]: "10.0.0.1:8001" is not a multiaddr`}},
		{"bad listen address", `{"privateKey":"` + key + `","listenAddresses":["/ip4/1.2.3.4/tcpp/1"],"peers":[]}`,
			[]string{`listenAddresses[0]: "/ip4/1.2.3.4/tcpp/1" is not a multiaddr`}},
		{"bootstrap without p2p", `{"privateKey":"` + key + `","bootstrapPeers":["/ip4/10.0.0.1/tcp/8001"],"peers":[]}`,
			[]string{`bootstrapPeers[0]: "/ip4/10.0.0.1/tcp/8001" is not a multiaddr ending in /p2p/<peer ID>`}},
		{"userspace problems", `{"privateKey":"` + key + `","peers":[{"name":"ms1","id":"` + p1.String() + `"}],"userspace":{"socks5":"localhost","socks5Username":"u",` +
			`"forwards":[{"listen":"127.0.0.1:2222","to":"ms1.mynetwork:22"},{"proto":"sctp","listen":"x","to":"ms9:22"},{"listen":"127.0.0.1:1","to":"ms1:0"}],` +
			`"exposes":[{"port":22,"to":"127.0.0.1:22"},{"to":"127.0.0.1"}]}}`,
			[]string{`userspace.socks5: "localhost" is not an IP:port (or "off")`,
				"userspace.socks5Password: socks5Username and socks5Password must be set together",
				`userspace.forwards[1].proto: "sctp" is not "tcp" or "udp"`,
				`userspace.forwards[1].listen: "x" is not a local IP:port`,
				`userspace.forwards[1].to: "ms9" names no configured peer`,
				`userspace.forwards[2].to: "ms1:0" is not HOST:PORT`,
				"userspace.exposes[1].port: missing",
				`userspace.exposes[1].to: "127.0.0.1" is not a local HOST:PORT`}},
		{"socks5Auth unknown", `{"privateKey":"` + key + `","peers":[],"userspace":{"socks5Auth":"yes"}}`,
			[]string{`userspace.socks5Auth: "yes" is not "password" or "none"`}},
		{"socks5Auth none with a username", `{"privateKey":"` + key + `","peers":[],"userspace":{"socks5Auth":"none","socks5Username":"u","socks5Password":"p"}}`,
			[]string{`userspace.socks5Auth: "none" but socks5Username is set: leave out one or the other`}},
		{"socks5Auth none off loopback", `{"privateKey":"` + key + `","peers":[],"userspace":{"socks5":"0.0.0.0:1080","socks5Auth":"none"}}`,
			[]string{`userspace.socks5Auth: "none": a SOCKS5 proxy on 0.0.0.0:1080, which is not a loopback address, needs a username and password, or anyone who reaches it reaches the mesh as this node`}},
		{"bad relay and reachability", `{"privateKey":"` + key + `","peers":[],"relays":["/ip4/10.0.0.1/tcp/1"],"reachability":"maybe"}`,
			[]string{`relays[0]: "/ip4/10.0.0.1/tcp/1" is not a multiaddr ending in /p2p/<peer ID>`,
				`reachability: "maybe" is not "auto", "public" or "private"`}},
		{"mtu out of range", `{"privateKey":"` + key + `","peers":[],"mtu":1000}`,
			[]string{"mtu: 1000 is outside 1280..65000 (leave it out for the default)"}},
		{"mtu too large", `{"privateKey":"` + key + `","peers":[],"mtu":70000}`,
			[]string{"mtu: 70000 is outside 1280..65000 (leave it out for the default)"}},
		{"mtu not a number", `{"privateKey":"` + key + `","peers":[],"mtu":"1420"}`,
			[]string{`mtu: must be a number, not the string "1420"`}},
		{"expose port not a number", `{"privateKey":"` + key + `","peers":[],"userspace":{"exposes":[{"port":"22","to":"127.0.0.1:22"}]}}`,
			[]string{`userspace.exposes[0].port: must be a number, not the string "22"`}},
		{"expose port out of range or not whole", `{"privateKey":"` + key + `","peers":[],"userspace":{"exposes":[` +
			`{"port":70000,"to":"127.0.0.1:22"},{"port":1.5,"to":"127.0.0.1:22"},{"port":-1,"to":"127.0.0.1:22"},` +
			`{"port":99999999999999999999999,"to":"127.0.0.1:22"}]}}`,
			[]string{"userspace.exposes[0].port: must be a whole number from 0 to 65535, not 70000",
				"userspace.exposes[1].port: must be a whole number from 0 to 65535, not 1.5",
				"userspace.exposes[2].port: must be a whole number from 0 to 65535, not -1",
				"userspace.exposes[3].port: must be a whole number from 0 to 65535, not 99999999999999999999999"}},
		{"exit node unknown", `{"privateKey":"` + key + `","peers":[],"exitNode":{"use":"b","clients":["c"]}}`,
			[]string{`exitNode.use: "b" names no peer in the config`, `exitNode.clients[0]: "c" names no peer in the config`, "exitNode.clients: set, but offer is not"}},
		{"exit node offered and used", `{"privateKey":"` + key + `","peers":[{"name":"b","id":"` + p1.String() + `"}],"exitNode":{"use":"b","offer":true}}`,
			[]string{`exitNode: offer and use together`}},
		{"mesh section empty", `{"privateKey":"` + key + `","peers":[],"mesh":{}}`,
			[]string{"mesh.name: missing", "mesh.trust: empty"}},
		{"mesh name of a peer", `{"privateKey":"` + key + `","peers":[{"name":"a","id":"` + p1.String() + `"}],"mesh":{"name":"a","trust":["` + meshKey(t) + `"]}}`,
			[]string{`mesh.name: "a" is also the name of peers[0]`}},
		{"mesh trust not a key", `{"privateKey":"` + key + `","peers":[],"mesh":{"name":"me","trust":["AAAA","%%"]}}`,
			[]string{`mesh.trust[0]: "AAAA" is not a libp2p public key`, `mesh.trust[1]: "%%" is not base64`}},
		{"mesh certificate not base64", `{"privateKey":"` + key + `","peers":[],"mesh":{"name":"me","trust":["` + meshKey(t) + `"],"certificate":"!"}}`,
			[]string{"mesh.certificate: not base64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestLoadNamesFileOnEveryLine(t *testing.T) {
	key, _ := testKey(t, "self")
	path := filepath.Join(t.TempDir(), "ms0.json")
	os.WriteFile(path, []byte(`{"privateKey":"`+key+`","peers":[{"name":"","id":"x"}],"x":1}`), 0o600)
	_, err := Load(path)
	if err == nil {
		t.Fatal("no error")
	}
	// The shape problem stops before validation; fix it and see both validation problems.
	os.WriteFile(path, []byte(`{"privateKey":"`+key+`","peers":[{"name":"","id":"x"}]}`), 0o600)
	_, err = Load(path)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 problems, got %q", lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, path+": peers[0].") {
			t.Errorf("line %q does not start with the file and path", l)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope.json")); err == nil || !strings.Contains(err.Error(), "does not exist (create it with 'mynetwork init')") {
		t.Errorf("missing file: %v", err)
	}
}

func TestGenerateSaveLoadRoundTrip(t *testing.T) {
	c, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	_, p1 := testKey(t, "p1")
	c.Peers = append(c.Peers, Peer{Name: "b", ID: p1.String(), Routes: []Route{{Net: "10.9.0.0/24"}}})
	none := []string{}
	c.BootstrapPeers = &none
	path := filepath.Join(t.TempDir(), "ms0.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.BootstrapPeers == nil || len(*got.BootstrapPeers) != 0 {
		t.Errorf("empty bootstrap list must survive a round trip, got %v", got.BootstrapPeers)
	}
	if !got.MDNSEnabled() || len(got.Listen()) != 4 || got.Peers[0].Routes[0].Net != "10.9.0.0/24" {
		t.Errorf("round trip lost data: %+v", got)
	}
	want, _ := c.ID()
	if id, _ := got.ID(); id != want {
		t.Errorf("identity changed")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestSuggestName(t *testing.T) {
	for in, want := range map[string]string{"pi": "pi", "my_laptop.local": "my-laptop", "": "node", "..": "node", "-x-": "x"} {
		if got := SuggestName(in); got != want || !peerName.MatchString(got) {
			t.Errorf("SuggestName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUserspaceSectionValid(t *testing.T) {
	key, _ := testKey(t, "self")
	_, p1 := testKey(t, "p1")
	doc := `{"privateKey":"` + key + `","peers":[{"name":"ms1","id":"` + p1.String() + `"}],"userspace":{"socks5":"off",` +
		`"forwards":[{"listen":"127.0.0.1:2222","to":"ms1.mynetwork:22"},{"proto":"udp","listen":"[::1]:5353","to":"100.64.1.2:53"}],` +
		`"exposes":[{"port":22,"to":"127.0.0.1:22"},{"proto":"udp","port":53,"to":"localhost:53"}]}}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Userspace.Exposes[1].Port != 53 || c.Userspace.Forwards[1].Proto != "udp" {
		t.Errorf("decoded %+v", c.Userspace)
	}
}

// An open proxy is fine on loopback, IPv4 or IPv6, and when it is off.
func TestSOCKS5AuthNoneOnLoopback(t *testing.T) {
	key, _ := testKey(t, "self")
	for _, listen := range []string{``, `"socks5":"127.0.0.2:1080",`, `"socks5":"[::1]:1080",`, `"socks5":"off",`} {
		doc := `{"privateKey":"` + key + `","peers":[],"userspace":{` + listen + `"socks5Auth":"none"}}`
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
}

// meshKey is a new mesh public key as the config holds it.
func meshKey(t *testing.T) string {
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := MeshPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIdle: absent is the default idle timeout with a DHT (the public
// list, or bootstrap peers given) and none without; "never" none; a
// duration itself.
func TestIdle(t *testing.T) {
	none, some := []string{}, []string{"/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWBoot"}
	for _, tc := range []struct {
		idle string
		boot *[]string
		want time.Duration
	}{
		{"", nil, DefaultIdleTimeout},
		{"", &some, DefaultIdleTimeout},
		{"", &none, 0},
		{"never", nil, 0},
		{"90s", &none, 90 * time.Second},
	} {
		if got := (&Config{IdleTimeout: tc.idle, BootstrapPeers: tc.boot}).Idle(); got != tc.want {
			t.Errorf("idleTimeout %q, bootstrapPeers %v: Idle() = %s, want %s", tc.idle, tc.boot, got, tc.want)
		}
	}
}
