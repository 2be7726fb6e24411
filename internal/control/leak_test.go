package control

import (
	"testing"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end: the server's goroutines, each
// dial's copying ones among them, must end with Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
