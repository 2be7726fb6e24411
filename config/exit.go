package config

import "fmt"

// ExitNode is the exit-node section: this node forwarding its peers'
// traffic to the internet, or sending all of its own through a peer.
type ExitNode struct {
	// Offer makes this node an exit node for Clients.
	Offer bool `json:"offer,omitempty"`
	// Clients are the peers (listed or members, by name) that may send
	// their traffic out through this node; absent means every peer.
	Clients []string `json:"clients,omitzero"`
	// Use is the peer (by name) all of this node's traffic goes through.
	Use string `json:"use,omitempty"`
	// AllowLAN keeps the local networks reachable directly while Use is
	// set (kernel mode).
	AllowLAN bool `json:"allowLAN,omitempty"`
}

// exitNode checks the exit-node section: names a peer could have (a
// member's are known only at run time) and not both offering and using,
// which would send the clients' traffic on to another exit node.
func (v *validator) exitNode(e *ExitNode) {
	known := func(path, name string) {
		_, listed := v.names[name]
		switch {
		case !ValidName(name):
			v.add(path, "%q is not a valid peer name", name)
		case !listed && !v.members:
			v.add(path, "%q names no peer in the config", name)
		}
	}
	if e.Use != "" {
		known("exitNode.use", e.Use)
	}
	for i, c := range e.Clients {
		known(fmt.Sprintf("exitNode.clients[%d]", i), c)
	}
	if e.Offer && e.Use != "" {
		v.add("exitNode", "offer and use together: an exit node sends its clients' traffic out itself, not through %q", e.Use)
	}
	if len(e.Clients) > 0 && !e.Offer {
		v.add("exitNode.clients", "set, but offer is not: clients of an exit node this node does not offer")
	}
}
