package conns

import (
	"testing"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end: once a Conn is closed its
// writer has stopped, and the hosts of the tuning test leave none of
// libp2p's goroutines, so nothing is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
