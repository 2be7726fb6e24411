// Package config reads, checks and saves a node's JSON configuration file
// (its key, its peers and the networks they route) and derives every node's
// mesh addresses from its peer ID.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
)

// DefaultListenAddresses are used when listenAddresses is absent: TCP and
// QUIC on port 8001, IPv4 and IPv6.
var DefaultListenAddresses = []string{
	"/ip4/0.0.0.0/tcp/8001",
	"/ip4/0.0.0.0/udp/8001/quic-v1",
	"/ip6/::/tcp/8001",
	"/ip6/::/udp/8001/quic-v1",
}

// Config is the schema of the configuration file. Optional lists are
// omitzero, not omitempty: an empty list ("listenAddresses": []) is written
// back as it was read, so Save never turns it into an absent one.
type Config struct {
	// PrivateKey is the node's libp2p private key, marshalled and multibase-encoded.
	PrivateKey string `json:"privateKey"`
	// ListenAddresses are multiaddrs to listen on; absent means
	// DefaultListenAddresses and an empty list means none (dial out only).
	ListenAddresses []string `json:"listenAddresses,omitzero"`
	// BootstrapPeers are DHT bootstrap multiaddrs; absent (nil) means the
	// public IPFS bootstrap list, an empty list means no DHT bootstrap at all.
	BootstrapPeers *[]string `json:"bootstrapPeers,omitempty"`
	// MDNS turns local-network discovery on or off; absent means on.
	MDNS *bool `json:"mdns,omitempty"`
	// Relays are extra circuit-relay nodes (multiaddrs with /p2p/<id>),
	// tried besides the configured peers when no direct path exists.
	Relays []string `json:"relays,omitzero"`
	// Reachability is "auto" (absent: AutoNAT finds out), "public" for a
	// node others can dial (it then relays for its peers and serves the
	// DHT at once) or "private" for a node behind NAT.
	Reachability string `json:"reachability,omitempty"`
	// MTU is the interface MTU (absent: the mode's default, 1420 for a
	// kernel TUN on Linux and MaxMTU otherwise). Large packets move more
	// bytes per unit of work; small ones queue less behind a slow link.
	// Peers with different MTUs work together.
	MTU int `json:"mtu,omitempty"`
	// Peers are the VPN nodes this node exchanges packets with.
	Peers []Peer `json:"peers"`
	// Routes are the networks this node serves its peers (a LAN behind
	// it): a peer's packets addressed to them are delivered to the host,
	// which forwards them. A peer reaches them when its own config routes
	// them through this node. A peer's packets to any other address of
	// the host than this node's mesh addresses are dropped.
	Routes []Route `json:"routes,omitzero"`
	// Userspace configures 'up --userspace': the SOCKS5 proxy, forwards and exposes.
	Userspace *Userspace `json:"userspace,omitempty"`
	// Metrics is where Prometheus metrics are served (IP:port on a
	// loopback address, e.g. "127.0.0.1:9464"); absent means none.
	Metrics string `json:"metrics,omitempty"`
	// IdleTimeout, a duration such as "10m", makes the node connect to a
	// peer only when it has packets for it (or the peer connects), and
	// close the connection after this long without packets either way;
	// "never" keeps every peer connected all the time. Absent: see Idle.
	IdleTimeout string `json:"idleTimeout,omitempty"`
	// Mesh is the membership section (see Mesh); absent means this node
	// takes only its listed peers.
	Mesh *Mesh `json:"mesh,omitempty"`
	// ExitNode is the exit-node section (see ExitNode); absent means
	// neither offering nor using one.
	ExitNode *ExitNode `json:"exitNode,omitempty"`
}

// MaxMTU is the largest MTU a config may set, and a userspace node's when
// it sets none: 65000 leaves room for a frame's header under the 64 KiB
// frame limit. MinMTU is IPv6's minimum.
const (
	MaxMTU = 65000
	MinMTU = 1280
)

// DefaultSOCKS5 is where the userspace node's SOCKS5 proxy listens by default.
const DefaultSOCKS5 = "127.0.0.1:1080"

// The values of Userspace.SOCKS5Auth (and of up's --socks5-auth).
const (
	SOCKS5AuthPassword = "password"
	SOCKS5AuthNone     = "none"
)

// Userspace is the userspace mode's section.
type Userspace struct {
	// SOCKS5 is the proxy's listen address; absent means DefaultSOCKS5 and
	// "off" disables the proxy.
	SOCKS5 string `json:"socks5,omitempty"`
	// SOCKS5Auth is "password" (absent means the same) or "none". With
	// "password" clients log in with SOCKS5Username and SOCKS5Password
	// when they are set, else with a username and password the node makes
	// once and keeps beside the config; otherwise any local user could
	// reach the mesh as this node. "none" opens the proxy to every local
	// user, and is refused on an address that is not loopback.
	SOCKS5Auth string `json:"socks5Auth,omitempty"`
	// SOCKS5Username and SOCKS5Password, when set, are required of clients.
	SOCKS5Username string    `json:"socks5Username,omitempty"`
	SOCKS5Password string    `json:"socks5Password,omitempty"`
	Forwards       []Forward `json:"forwards,omitzero"`
	Exposes        []Expose  `json:"exposes,omitzero"`
}

// Forward listens on a local address and connects through the mesh.
type Forward struct {
	Proto  string `json:"proto,omitempty"` // "tcp" (default) or "udp"
	Listen string `json:"listen"`          // local IP:port
	To     string `json:"to"`              // peer name or mesh IP, and port
}

// Expose sends connections to this node's mesh address on Port to a local service.
type Expose struct {
	Proto string `json:"proto,omitempty"` // "tcp" (default) or "udp"
	Port  uint16 `json:"port"`
	To    string `json:"to"` // local host:port
}

// Peer is one VPN node in the configuration.
type Peer struct {
	Name   string   `json:"name"`
	ID     string   `json:"id"`
	Routes []Route  `json:"routes,omitzero"`
	Addrs  []string `json:"addrs,omitzero"`
}

// Route is a network reached through a peer.
type Route struct {
	Net string `json:"net"`
}

// Generate returns a config with a new Ed25519 identity and no peers.
func Generate() (*Config, error) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	enc, err := multibase.Encode(multibase.Base58BTC, raw)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	listen := append([]string(nil), DefaultListenAddresses...)
	return &Config{PrivateKey: enc, ListenAddresses: listen, Peers: []Peer{}}, nil
}

// PrivKey decodes the node's private key.
func (c *Config) PrivKey() (crypto.PrivKey, error) {
	_, raw, err := multibase.Decode(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("privateKey is not multibase: %w", err)
	}
	key, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("privateKey is not a libp2p private key: %w", err)
	}
	return key, nil
}

// ID returns the node's own peer ID.
func (c *Config) ID() (peer.ID, error) {
	key, err := c.PrivKey()
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(key)
}

// HasDHT says whether the node joins a DHT: bootstrapPeers absent (the
// public list) or not empty.
func (c *Config) HasDHT() bool { return c.BootstrapPeers == nil || len(*c.BootstrapPeers) > 0 }

// MinIdleTimeout is the shortest idleTimeout: a connection takes a few
// round trips to make, a ping every 10 s keeps it.
const MinIdleTimeout = 5 * time.Second

// NeverIdle is the idleTimeout that keeps every peer connected.
const NeverIdle = "never"

// DefaultIdleTimeout is the idle timeout of a config without one, if it
// has a DHT.
const DefaultIdleTimeout = 10 * time.Minute

// Idle is the idle timeout, 0 for none (every peer always connected).
// Absent, it is DefaultIdleTimeout with a DHT and none without: a node
// that connects on demand must find a peer whose address it lacks or
// whose address changed, and without a DHT only a connection the peer
// makes tells it.
func (c *Config) Idle() time.Duration {
	switch c.IdleTimeout {
	case NeverIdle:
		return 0
	case "":
		if c.HasDHT() {
			return DefaultIdleTimeout
		}
		return 0
	}
	d, _ := time.ParseDuration(c.IdleTimeout) // validated by Load
	return d
}

// MDNSEnabled reports whether mDNS discovery is on (the default).
func (c *Config) MDNSEnabled() bool { return c.MDNS == nil || *c.MDNS }

// Listen returns the listen addresses, with the default when absent.
func (c *Config) Listen() []string {
	if c.ListenAddresses == nil {
		return DefaultListenAddresses
	}
	return c.ListenAddresses
}

// Load reads, strictly decodes and validates the file at path. Every problem
// is reported, each prefixed with the file name and its JSON path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config file %s does not exist (create it with 'mynetwork init')", path)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, inFile(path, err)
	}
	return c, nil
}

// Parse strictly decodes and validates a config document.
func Parse(data []byte) (*Config, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not valid JSON: trailing data after the top-level object")
	}
	if probs := checkShape("", raw, schemaOf[Config]()); len(probs) > 0 {
		return nil, joinProblems(probs)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// inFile prefixes every joined problem with the file name.
func inFile(path string, err error) error {
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		var out []error
		for _, e := range multi.Unwrap() {
			out = append(out, fmt.Errorf("%s: %w", path, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Marshal renders the config as the file format: indented JSON, final newline.
func (c *Config) Marshal() ([]byte, error) {
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return append(out, '\n'), nil
}

// Save writes the config atomically (temporary file, then rename) with mode
// 0600, since the file holds the private key.
func (c *Config) Save(path string) error {
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, data, 0o600)
}

// WriteFileAtomic writes data to a temporary file beside path and renames it
// into place, so a reader sees the old or the new file, never a torn one.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
