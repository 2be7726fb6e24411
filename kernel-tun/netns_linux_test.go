package kerneltun

import (
	"testing"

	"github.com/mynetwork/mynetwork/internal/netnstest"
)

// needTUN skips (under CI fails) a test that makes interfaces unless it
// runs in the network namespace TestMain made.
func needTUN(t *testing.T) {
	t.Helper()
	netnstest.Need(t, "makes TUN interfaces")
}
