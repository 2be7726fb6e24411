// Package control is the daemon's local API: JSON types shared by daemon and
// CLI, an http.Handler over a Backend, and a client that reaches the daemon
// over its Unix socket. The daemon returns data; the CLI renders it.
package control

import (
	"time"

	"context"
	"net"

	"github.com/mynetwork/mynetwork/internal/buildinfo"
)

// Status is the answer to GET /v1/status.
type Status struct {
	PeerID    string `json:"peerID"`
	Interface string `json:"interface"`
	Mode      string `json:"mode"` // "kernel" or "userspace"
	MTU       int    `json:"mtu"`
	// SegmentationOffload: TCP travels in super-packets of up to 64 KiB,
	// carried whole to peers that take them (a Linux TUN below MTU 16000).
	SegmentationOffload bool   `json:"segmentationOffload"`
	IPv4                string `json:"ipv4"`
	IPv6                string `json:"ipv6"`
	SwarmPeers          int    `json:"swarmPeers"`
	// IdleTimeoutSeconds is how long a connection to a peer stays without
	// packets on a node that connects on demand; 0: every peer connected.
	IdleTimeoutSeconds int          `json:"idleTimeoutSeconds,omitempty"`
	Peers              []PeerStatus `json:"peers"`
	// Addresses are the node's listen addresses others can dial: no
	// loopback, link-local or mesh address.
	Addresses []string   `json:"addresses"`
	Counters  Counters   `json:"counters"`
	Userspace *Userspace `json:"userspace,omitempty"` // userspace mode only
	// BootstrapPeers are the DHT's bootstrap peers, in the config's order;
	// absent when the node has none (no DHT).
	BootstrapPeers []BootstrapPeer `json:"bootstrapPeers,omitempty"`
	// Mesh is this node's membership; absent without a mesh section.
	Mesh *MeshStatus `json:"mesh,omitempty"`
	// ExitNode is the exit node used or offered; absent for neither.
	ExitNode *ExitNodeStatus `json:"exitNode,omitempty"`
	// Forwarding is what a userspace node's stack carries to its host for
	// peers (exit node, served networks); absent when it carries nothing.
	Forwarding *ForwardStatus `json:"forwarding,omitempty"`
	// Version is the daemon's build: version, commit, Go.
	Version buildinfo.Info `json:"version"`
}

// BootstrapPeer is one DHT bootstrap peer as the node found it.
type BootstrapPeer struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"` // when it is a configured peer too
	// State is "dht-server" (the node joins the DHT through it),
	// "not-dht-server" (connected, but it serves no DHT), "unreachable",
	// or "trying" before the first dial ends.
	State string `json:"state"`
	Error string `json:"error,omitempty"` // why it cannot be used
}

// Userspace is what a userspace-mode node offers local programs.
type Userspace struct {
	SOCKS5   string   `json:"socks5"` // listen address, or "off"
	Forwards []string `json:"forwards,omitempty"`
	Exposes  []string `json:"exposes,omitempty"`
	// SOCKS5Credentials is the file that holds the proxy's username and
	// password (the config, or the one the node made); absent when the
	// proxy is off or open.
	SOCKS5Credentials string `json:"socks5Credentials,omitempty"`
}

// MeshStatus is a node's membership: its name, the mesh keys it trusts
// (fingerprints), whether it can admit members, until when its
// certificate is valid, and how many members and revocations it holds.
type MeshStatus struct {
	Name        string    `json:"name"`
	Trust       []string  `json:"trust"`
	Admin       bool      `json:"admin"`
	Certificate time.Time `json:"certificateUntil,omitzero"`
	Members     int       `json:"members"`
	Revocations int       `json:"revocations"`
	// Counted: record streams reset for bad bytes, records that did not
	// verify, joins refused (admin nodes).
	MalformedRecords uint64 `json:"malformedRecords"`
	RefusedRecords   uint64 `json:"refusedRecords"`
	RefusedJoins     uint64 `json:"refusedJoins"`
}

// PeerStatus is one VPN peer, listed in the config or a member.
type PeerStatus struct {
	Name      string  `json:"name"`
	Member    bool    `json:"member,omitempty"` // not listed: admitted by its certificate
	ID        string  `json:"id"`
	IPv4      string  `json:"ipv4"`
	IPv6      string  `json:"ipv6"`
	Connected bool    `json:"connected"`
	Addr      string  `json:"addr,omitempty"`  // remote multiaddr of the connection in use
	Path      string  `json:"path,omitempty"`  // "lan", "direct" or "relay"
	Relay     string  `json:"relay,omitempty"` // on "relay": the relay's name or peer ID
	Why       string  `json:"why,omitempty"`   // when not connected: why, if known
	Idle      bool    `json:"idle,omitempty"`  // not connected because nothing needed it (idleTimeout)
	RTTMillis float64 `json:"rttMs,omitempty"`
	// Packets per path: on the stream, and as QUIC datagrams.
	TxPackets   uint64 `json:"txPackets"`
	RxPackets   uint64 `json:"rxPackets"`
	TxDatagrams uint64 `json:"txDatagrams"`
	RxDatagrams uint64 `json:"rxDatagrams"`
	// TCP super-packets (segmentation offload) sent whole, and cut into
	// segments for a peer that does not take them.
	TxSuperPackets uint64 `json:"txSuperPackets"`
	TxSegmented    uint64 `json:"txSegmented"`
	Dropped        uint64 `json:"dropped"`
	// DroppedForDelay counts packets dropped (and in Dropped) because
	// they had waited too long in the peer's queue: the signal that slows
	// a sender down before a standing queue forms.
	DroppedForDelay uint64 `json:"droppedForDelay"`
	// MarkedForDelay counts packets CoDel marked Congestion Experienced
	// instead of dropping them, because their sender understands ECN.
	MarkedForDelay uint64 `json:"markedForDelay"`
	// MalformedFrames counts frames from the peer that broke the packet
	// protocol; each reset its stream.
	MalformedFrames uint64 `json:"malformedFrames"`
	// StalledStreams counts packet streams to the peer reset because the
	// peer read nothing for a few seconds.
	StalledStreams uint64 `json:"stalledStreams"`
}

// Counters are the packet engine's totals.
type Counters struct {
	TxPackets   uint64 `json:"txPackets"`
	TxBytes     uint64 `json:"txBytes"`
	RxPackets   uint64 `json:"rxPackets"`
	RxBytes     uint64 `json:"rxBytes"`
	DropNoRoute uint64 `json:"dropNoRoute"`
	DropSource  uint64 `json:"dropSource"`
	DropInvalid uint64 `json:"dropInvalid"`
	DropSend    uint64 `json:"dropSend"`
	DropDevice  uint64 `json:"dropDevice"`
	// DropDestination counts packets from peers addressed neither to this
	// node nor to a network it serves.
	DropDestination uint64 `json:"dropDestination"`
	Refused         uint64 `json:"refusedStreams"`
	// Panics counts packet batches whose handling panicked (a bug; the
	// node went on without them).
	Panics uint64 `json:"panics"`
}

// SwarmPeer is one connected libp2p peer, VPN peer or not.
type SwarmPeer struct {
	ID    string   `json:"id"`
	Name  string   `json:"name,omitempty"` // set for VPN peers
	VPN   bool     `json:"vpn"`
	Addrs []string `json:"addrs"`
}

// Route is one entry of the route table.
type Route struct {
	Net       string `json:"net"`
	PeerName  string `json:"peerName"`
	PeerID    string `json:"peerID"`
	Connected bool   `json:"connected"`
	// Own is true for a peer's own mesh address, which cannot be deleted.
	Own bool `json:"own"`
}

// RouteRequest asks to add or delete a route.
type RouteRequest struct {
	Net     string `json:"net"`
	Peer    string `json:"peer,omitempty"` // name or peer ID; for add
	Persist bool   `json:"persist"`
}

// Backend is what the daemon offers the API.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Peers(ctx context.Context) ([]SwarmPeer, error)
	Routes(ctx context.Context) ([]Route, error)
	AddRoute(ctx context.Context, r RouteRequest) (Route, error)
	DelRoute(ctx context.Context, r RouteRequest) error
	// Dial opens a TCP connection to host:port on the mesh; host is a peer
	// name, name.mynetwork, or an IP.
	Dial(ctx context.Context, host string, port uint16) (net.Conn, error)
	// Ping pings a configured peer once over its packets' connection.
	Ping(ctx context.Context, req PingRequest) (PingReply, error)
}

// ForwardStatus counts the connections a userspace node's stack carries
// on to its host: open now, refused at the bounds (1024 TCP, 1024 UDP),
// host dials that failed, and packets to other addresses not carried.
type ForwardStatus struct {
	TCP        int    `json:"tcp"`
	UDP        int    `json:"udp"`
	Refused    uint64 `json:"refused"`
	DialFailed uint64 `json:"dialFailed"`
	Dropped    uint64 `json:"dropped"`
}
