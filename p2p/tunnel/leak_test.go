package tunnel

import (
	"testing"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end: once a Transport and its host
// are closed, none of their goroutines may be left (a send loop per peer, a
// reader per incoming stream and per QUIC connection's datagrams, the
// tests' receivers, libp2p's and quic-go's); none of the libraries' needs
// ignoring.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
