// Package netnstest runs a package's tests, as root on Linux, in a copy of
// the test binary inside a new network namespace of its own: every
// interface, rule, route, table and sysctl the tests make is that
// namespace's, and goes away with it however the copy exits. A whole
// process rather than one locked thread, because libraries such as the TUN
// one act from whatever thread their calls and goroutines land on.
//
// A package's TestMain calls Main (or Run, to go on as it likes in this
// process); each test that changes the network begins with Need, which
// skips it, or under CI fails it, outside that namespace.
package netnstest

import (
	"os"
	"strconv"
	"testing"
)

// Options are a package's: one per test binary.
type Options struct {
	// Env hands the copy the inode of the network namespace the binary
	// was started in, as in MYNETWORK_KTT_HOSTNS. The copy runs the tests
	// only where that inode is not its own, so no setting of the variable
	// by hand can point them at the host's network.
	Env string
	// Name names the tests where the copy did not exit by itself, as in
	// "hostnet tests".
	Name string
	// Files must exist for the tests to run at all, as /dev/net/tun: where
	// one is missing no copy is made and Need says why.
	Files []string
}

// MustRun is true under CI (CI=true, or MYNETWORK_E2E=1 as .ci/run sets):
// there a test that cannot run fails instead of skipping, as in e2e.
var MustRun = os.Getenv("MYNETWORK_E2E") == "1" || isTrue(os.Getenv("CI"))

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

// noNetns says why the tests that change the network cannot run here; it
// is empty in the namespace Run made.
var noNetns = "not run yet"

// Main runs the tests in their own network namespace where it can, and
// otherwise in this process, then exits with their code.
func Main(m *testing.M, o Options) {
	if code, ran := Run(o); ran {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// Need skips (under CI fails) a test unless it runs in the network
// namespace Run made. What says what the test does there, as in "changes
// the network".
func Need(t testing.TB, what string) {
	t.Helper()
	if noNetns == "" {
		return
	}
	msg := what + ", only in a network namespace of its own: " + noNetns
	if MustRun {
		t.Fatal(msg + " (CI=true or MYNETWORK_E2E=1 turns this skip into a failure)")
	}
	t.Skip(msg)
}
