package membership

import (
	"testing"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end: once a Service and its host
// are closed, none of their goroutines may be left (the sender, the
// stream handlers, Join's own host, libp2p's); none needs ignoring.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
