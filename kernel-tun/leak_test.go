package kerneltun

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, as root on Linux in a network namespace of their
// own (see ownNetns), and fails them if a goroutine outlives them: the TUN
// library starts two per device, and Close must end both.
func TestMain(m *testing.M) {
	if code, ran := runInOwnNetns(); ran {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
