package daemon

import (
	"testing"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end: once Run has returned, none of
// a daemon's goroutines may be left (the engine's loops, the control
// server, the SOCKS5 proxy's, libp2p's); none of libp2p's needs ignoring.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
