package hostnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

// hostNetnsEnv carries, into the copy of the test binary that runs in a
// network namespace of its own, the inode of the namespace the binary was
// started in. The copy changes the host's network only where its own
// namespace is another: setting the variable by hand cannot point the
// tests at the host's routes and firewall.
const hostNetnsEnv = "MYNETWORK_HOSTNET_HOSTNS"

// noNetns says why the tests that change the network cannot run; it is
// empty in the namespace TestMain made.
var noNetns = "not run yet"

// mustRun is true under CI (CI=true, or MYNETWORK_E2E=1 as .ci/run sets),
// where a test that cannot run fails instead of skipping.
var mustRun = os.Getenv("MYNETWORK_E2E") == "1" || parseBool(os.Getenv("CI"))

func parseBool(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

// TestMain runs the tests, as root, in a copy of the test binary inside a
// new network namespace: every rule, route, table and sysctl they change
// is that namespace's, and goes away with it however the copy exits.
func TestMain(m *testing.M) {
	if code, ran := runInOwnNetns(); ran {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func netnsInode() (string, error) {
	fi, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10), nil
}

// runInOwnNetns starts the copy and returns its exit code, or ran false
// where the tests run in this process: in the copy itself, or where no
// namespace can be made (then noNetns says why).
func runInOwnNetns() (code int, ran bool) {
	self, err := netnsInode()
	if err != nil {
		noNetns = "cannot tell its network namespace: " + err.Error()
		return 0, false
	}
	if host, ok := os.LookupEnv(hostNetnsEnv); ok {
		if host != self {
			noNetns = ""
		} else {
			noNetns = "still in the network namespace it was started in"
		}
		return 0, false
	}
	if os.Geteuid() != 0 {
		noNetns = "needs root"
		return 0, false
	}
	// The kernel sends Pdeathsig when the thread that started the copy ends.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), hostNetnsEnv+"="+self)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		noNetns = "cannot make a network namespace: " + err.Error()
		return 0, false
	}
	var exit *exec.ExitError
	switch err := cmd.Wait(); {
	case errors.As(err, &exit) && exit.Exited():
		return exit.ExitCode(), true
	case err != nil:
		fmt.Fprintln(os.Stderr, "hostnet tests in their network namespace:", err)
		return 1, true
	}
	return 0, true
}

// needNetns skips (under CI fails) a test that changes the network unless
// it runs in the namespace TestMain made.
func needNetns(t *testing.T) {
	t.Helper()
	if noNetns == "" {
		return
	}
	msg := "changes the network, only in a network namespace of its own: " + noNetns
	if mustRun {
		t.Fatal(msg + " (CI=true or MYNETWORK_E2E=1 turns this skip into a failure)")
	}
	t.Skip(msg)
}
