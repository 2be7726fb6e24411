// Package enginetest has in-memory fakes for testing the engine without root
// or a network: a Transport mesh whose peers exchange packets over channels.
package enginetest

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mynetwork/mynetwork/internal/packet"
)

type msg struct {
	from peer.ID
	pkt  []byte
}

// Mesh connects MemTransports by peer ID.
type Mesh struct {
	mu    sync.Mutex
	nodes map[peer.ID]*MemTransport
}

// NewMesh returns an empty mesh.
func NewMesh() *Mesh { return &Mesh{nodes: map[peer.ID]*MemTransport{}} }

// Join adds a node to the mesh and returns its transport.
func (m *Mesh) Join(id peer.ID) *MemTransport {
	t := &MemTransport{mesh: m, self: id, inbox: make(chan msg, 1024), closed: make(chan struct{})}
	m.mu.Lock()
	m.nodes[id] = t
	m.mu.Unlock()
	return t
}

func (m *Mesh) node(id peer.ID) (*MemTransport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.nodes[id]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("no peer %s in the mesh", id)
}

// MemTransport is an engine.Transport over channels.
type MemTransport struct {
	mesh      *Mesh
	self      peer.ID
	inbox     chan msg
	closed    chan struct{}
	closeOnce sync.Once
}

// Send copies pkts into the destination's inbox; it drops when the inbox is full.
func (t *MemTransport) Send(to peer.ID, pkts [][]byte) error {
	dst, err := t.mesh.node(to)
	if err != nil {
		return err
	}
	for _, p := range pkts {
		select {
		case dst.inbox <- msg{t.self, append([]byte(nil), p...)}:
		default:
		}
	}
	return nil
}

// Inject delivers a packet as if peer from had sent it.
func (t *MemTransport) Inject(from peer.ID, pkt []byte) {
	t.inbox <- msg{from, append([]byte(nil), pkt...)}
}

// Receive blocks for one packet, then takes what else is queued.
func (t *MemTransport) Receive(bufs [][]byte, sizes []int, from []peer.ID, offset int) (int, error) {
	var m msg
	select {
	case m = <-t.inbox:
	case <-t.closed:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n][offset:], m.pkt)
		clear(bufs[n][offset-packet.VirtioHdrLen : offset]) // whole packets: no offload
		from[n] = m.from
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case m = <-t.inbox:
		default:
			return n, nil
		}
	}
}

// Close stops Receive.
func (t *MemTransport) Close() error {
	t.closeOnce.Do(func() { close(t.closed) })
	return nil
}

// TakingTransport is a MemTransport that takes the sender's buffers instead
// of copying packets (engine.BufferTaker): a packet in flight shares its
// memory with no one, so an engine that kept using a buffer it handed over
// corrupts what the receiver gets.
type TakingTransport struct {
	*MemTransport
	Taken atomic.Int64 // buffers taken
}

// SendBuffers delivers each packet in the buffer it came in and leaves a
// fresh buffer of the same length in its place.
func (t *TakingTransport) SendBuffers(to peer.ID, bufs [][]byte, sizes []int, offset int) error {
	dst, err := t.mesh.node(to)
	if err != nil {
		return err
	}
	for i, b := range bufs {
		dst.inbox <- msg{t.self, b[offset : offset+sizes[i]]}
		bufs[i] = make([]byte, len(b))
		t.Taken.Add(1)
	}
	return nil
}
