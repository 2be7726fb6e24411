package conns

import "github.com/libp2p/go-libp2p/p2p/muxer/yamux"

// Yamux is go-libp2p's yamux with messages large enough for a whole frame
// of the packet stream (a 64 KB super-packet with its length and
// virtio-net header): with yamux's default of 64 KiB, each took two
// messages, so two TLS writes at the sender and two frames to decode at
// the receiver. The limit is the sender's only: a receiver takes any
// message its stream's window allows.
func Yamux() *yamux.Transport {
	t := *yamux.DefaultTransport
	t.MaxMessageSize = 128 << 10
	return &t
}
