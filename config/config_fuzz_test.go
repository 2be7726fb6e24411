package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// fuzzValidDocs returns valid config documents to seed FuzzParse with:
// fresh Generate output as written by 'mynetwork init', and one that uses
// every section of the schema.
func fuzzValidDocs(tb testing.TB) [][]byte {
	tb.Helper()
	gen, err := Generate()
	if err != nil {
		tb.Fatal(err)
	}
	fresh, err := gen.Marshal()
	if err != nil {
		tb.Fatal(err)
	}

	key, _ := testKey(tb, "fuzz-self")
	_, p1 := testKey(tb, "fuzz-p1")
	_, p2 := testKey(tb, "fuzz-p2")
	off, none := false, []string{}
	full := &Config{
		PrivateKey:      key,
		ListenAddresses: []string{"/ip4/127.0.0.1/tcp/8001", "/ip6/::1/udp/8001/quic-v1"},
		BootstrapPeers:  &none,
		MDNS:            &off,
		Relays:          []string{"/ip4/192.0.2.1/tcp/4001/p2p/" + p2.String()},
		Reachability:    "private",
		Peers: []Peer{
			{Name: "ms1", ID: p1.String(), Routes: []Route{{Net: "10.1.0.0/16"}, {Net: "fd00:1::/64"}},
				Addrs: []string{"/ip4/192.0.2.10/udp/8001/quic-v1"}},
			{Name: "pi", ID: p2.String()},
		},
		Userspace: &Userspace{
			SOCKS5: "127.0.0.1:1080", SOCKS5Username: "u", SOCKS5Password: "p",
			Forwards: []Forward{{Listen: "127.0.0.1:2222", To: "ms1.mynetwork:22"}, {Proto: "udp", Listen: "[::1]:5353", To: "100.64.1.2:53"}},
			Exposes:  []Expose{{Port: 22, To: "127.0.0.1:22"}, {Proto: "udp", Port: 53, To: "localhost:53"}},
		},
	}
	if err := full.Validate(); err != nil {
		tb.Fatalf("the full seed config is not valid: %v", err)
	}
	all, err := full.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return [][]byte{fresh, all}
}

// FuzzParse checks Parse on arbitrary documents. Its seeds are valid
// configs (fuzzValidDocs, and files under testdata/fuzz/FuzzParse) and
// every error case of TestParseErrors (files under testdata/fuzz/FuzzParse).
// Properties: Parse never panics; a config it accepts survives Marshal
// and Parse again unchanged (reflect.DeepEqual), so Save writes back what
// Load read; and every problem it reports is one line of the form
// "<json path>: <message>" or a top-level message (see checkProblemLines).
func FuzzParse(f *testing.F) {
	for _, doc := range fuzzValidDocs(f) {
		f.Add(doc)
	}
	for _, doc := range []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"peers":null}`, `{"privateKey":""}`,
		`{"userspace":{"exposes":[{"port":70000}]}}`, `{"peers":[{"routes":[{"net":7}]}]}`,
		`{"privateKey":"z","privateKey":"y"}`, `{"PrivateKey":"z"}`, `{"mdns":null,"userspace":null}`,
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Errorf("Parse returned a config and the error %v", err)
			}
			checkProblemLines(t, err)
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse accepted\n%s\nbut not its own Marshal output\n%s\n%v", data, out, err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("Marshal and Parse changed the config\n%s\ninto\n%s\nparsed: %#v\nagain:  %#v", data, out, c, again)
		}
	})
}

// problemPath and topLevel are what one reported problem must look like:
// a JSON path then ": " and a message, or one of Parse's top-level
// messages, which name no path. A path is made of keys (.key, or
// ["key"] quoted when the key is not plain) and list indexes ([3]).
var (
	problemPath = regexp.MustCompile(`^(` + pathKey + `|` + quotedKey + `)(\[[0-9]+\]|\.` + pathKey + `|` + quotedKey + `)*: \S`)
	topLevel    = regexp.MustCompile(`^(not valid JSON: |decode: |must be an object, not )`)
)

const (
	pathKey   = `[A-Za-z0-9_-]+`
	quotedKey = `\["([^"\\]|\\.)*"\]`
)

// checkProblemLines checks that err reports its problems one per line,
// each a path and a message or a top-level message: Load prefixes each
// problem with the file name, and a reader reads one per line.
func checkProblemLines(t *testing.T, err error) {
	t.Helper()
	problems := []error{err}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		problems = multi.Unwrap()
	}
	for _, p := range problems {
		msg := p.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("problem %q spans more than one line", msg)
			continue
		}
		if !problemPath.MatchString(msg) && !topLevel.MatchString(msg) {
			t.Errorf("problem %q is neither \"<json path>: <message>\" nor a top-level message", msg)
		}
	}
}

// TestProblemPathQuotesOddKeys is the regression test for unknown keys
// that FuzzParse found to break the one-problem-per-line form: an empty
// key gave a problem without a path, and a key with a newline split one
// problem over two lines (the second without Load's file name). Such
// keys are now quoted in the path.
func TestProblemPathQuotesOddKeys(t *testing.T) {
	known := "(known keys: privateKey, listenAddresses, bootstrapPeers, mdns, relays, reachability, mtu, peers, routes, userspace, metrics, idleTimeout, mesh, exitNode)"
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"empty key", `{"":1}`, `[""]: unknown key "" in the top level ` + known},
		{"newline in a key", `{"a\nb":1}`, `["a\nb"]: unknown key "a\nb" in the top level ` + known},
		{"space in a peer's key", `{"peers":[{"x y":1}]}`, `peers[0]["x y"]: unknown key "x y" in peers[0] (known keys: name, id, routes, addrs)`},
		{"plain unknown key", `{"colour":"red"}`, `colour: unknown key "colour" in the top level ` + known},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || err.Error() != tc.want {
				t.Errorf("Parse(%s) = %v\nwant %s", tc.doc, err, tc.want)
			}
			checkProblemLines(t, err)
		})
	}
}

// TestMarshalKeepsEmptyLists is the regression test for the round trip
// that FuzzParse found to change a config: "listenAddresses": [] (and any
// other empty list) was dropped by Marshal, so Save (as in 'route add
// --persist') turned it into an absent list, which means the default
// listen addresses on every interface.
func TestMarshalKeepsEmptyLists(t *testing.T) {
	key, _ := testKey(t, "self")
	_, p1 := testKey(t, "p1")
	doc := `{"privateKey":"` + key + `","listenAddresses":[],"relays":[],"peers":[{"name":"a","id":"` + p1.String() +
		`","routes":[],"addrs":[]}],"userspace":{"forwards":[],"exposes":[]}}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, again) {
		t.Errorf("round trip through\n%s\nchanged %+v into %+v", out, c, again)
	}
	if again.ListenAddresses == nil || len(again.Listen()) != 0 {
		t.Errorf("empty listenAddresses came back as %q: Listen() = %q", again.ListenAddresses, again.Listen())
	}
	for _, key := range []string{"listenAddresses", "relays", "routes", "addrs", "forwards", "exposes"} {
		if !strings.Contains(string(out), `"`+key+`": []`) {
			t.Errorf("Marshal dropped the empty %s list:\n%s", key, out)
		}
	}
}
