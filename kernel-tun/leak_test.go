package kerneltun

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/mynetwork/mynetwork/internal/netnstest"
)

// TestMain runs the tests, as root on Linux in a network namespace of their
// own (see netnstest), and fails them if a goroutine outlives them: the TUN
// library starts two per device, and Close must end both.
func TestMain(m *testing.M) {
	if code, ran := netnstest.Run(netnstest.Options{
		Env:   "MYNETWORK_KTT_HOSTNS",
		Name:  "kernel-tun tests",
		Files: []string{"/dev/net/tun"},
	}); ran {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
