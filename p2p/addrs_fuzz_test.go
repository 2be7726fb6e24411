package p2p

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzAddrsMessage feeds address messages, as a configured peer could send
// them, to the decoder: it never panics, and what it keeps is at most
// maxAddrs addresses, none of them in the mesh.
func FuzzAddrsMessage(f *testing.F) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("/ip4/192.168.1.%d/tcp/8001", i)
	}
	for _, list := range [][]string{
		{"/ip4/192.168.1.2/tcp/8001", "/ip4/192.168.1.2/udp/8001/quic-v1"},
		{"/ip4/100.64.3.4/tcp/8001", "not a multiaddr", ""},
		many,
	} {
		msg, _ := json.Marshal(list)
		f.Add(msg)
	}
	f.Add([]byte(`["/ip6/fd6d:796e:6574::1/tcp/1"]`))
	f.Add([]byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		addrs, err := readAddrs(bytes.NewReader(msg))
		if err != nil {
			return
		}
		if len(addrs) > maxAddrs {
			t.Fatalf("kept %d addresses, more than %d", len(addrs), maxAddrs)
		}
		for _, a := range addrs {
			if inMesh(a) {
				t.Fatalf("kept the mesh address %s", a)
			}
		}
	})
}

// TestAddrsMessageBounded: a message of 100 addresses plants 32.
func TestAddrsMessageBounded(t *testing.T) {
	var list []string
	for i := range 100 {
		list = append(list, fmt.Sprintf("/ip4/192.168.1.%d/tcp/8001", i))
	}
	msg, _ := json.Marshal(list)
	addrs, err := readAddrs(bytes.NewReader(msg))
	if err != nil || len(addrs) != maxAddrs {
		t.Fatalf("kept %d addresses (%v), want %d", len(addrs), err, maxAddrs)
	}
}
