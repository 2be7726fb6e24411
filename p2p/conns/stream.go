package conns

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// OpenStream opens a stream on one chosen connection (not the swarm's
// pick) for the first of protos the peer speaks; s.Protocol() says which.
// ctx's deadline bounds the negotiation.
func OpenStream(ctx context.Context, c network.Conn, protos ...protocol.ID) (network.Stream, error) {
	s, err := c.NewStream(network.WithAllowLimitedConn(ctx, "mynetwork"))
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	proto, err := msmux.SelectOneOf(protos, s)
	if err == nil {
		err = s.SetProtocol(proto)
	}
	if err != nil {
		s.Reset()
		return nil, err
	}
	s.SetDeadline(time.Time{})
	return s, nil
}
