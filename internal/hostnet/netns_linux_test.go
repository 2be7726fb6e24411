package hostnet

import (
	"testing"

	"github.com/mynetwork/mynetwork/internal/netnstest"
)

// mustRun is true under CI, where a test that cannot run fails instead of
// skipping.
var mustRun = netnstest.MustRun

// TestMain runs the tests, as root, in a copy of the test binary inside a
// new network namespace: every rule, route, table and sysctl they change
// is that namespace's, and goes away with it however the copy exits.
func TestMain(m *testing.M) {
	netnstest.Main(m, netnstest.Options{Env: "MYNETWORK_HOSTNET_HOSTNS", Name: "hostnet tests"})
}

// needNetns skips (under CI fails) a test that changes the network unless
// it runs in the namespace TestMain made.
func needNetns(t *testing.T) {
	t.Helper()
	netnstest.Need(t, "changes the network")
}
