package kerneltun

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

// hostNetnsEnv hands the test binary, run again in a new network namespace,
// the inode of the namespace it was started in: the copy runs the tests
// that make interfaces only where that inode is not its own, so no setting
// of the variable by hand can make them run on the host's.
const hostNetnsEnv = "MYNETWORK_KTT_HOSTNS"

// noNetns says why the tests that need a TUN cannot run here; empty in
// the namespace the tests made.
var noNetns = "not run yet"

// mustRun is true under CI (CI=true, or MYNETWORK_E2E=1 as .ci/run sets):
// there a test that cannot make a TUN fails instead of skipping, as in e2e.
var mustRun = os.Getenv("MYNETWORK_E2E") == "1" || isTrue(os.Getenv("CI"))

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

func netnsInode() (string, error) {
	fi, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10), nil
}

// runInOwnNetns runs the test binary again, with the same flags, as a
// child in a new network namespace, and returns its exit code. A whole
// process in the namespace, rather than one locked thread, because the TUN
// library looks the interface up by name from whatever thread its calls
// and goroutines land on. The namespace, with every interface and route
// the tests made, goes away when the child exits, however it exits.
//
// It returns ran false where the tests should run in this process: in the
// child, or where the namespace cannot be made (noNetns says why).
func runInOwnNetns() (code int, ran bool) {
	self, err := netnsInode()
	if host := os.Getenv(hostNetnsEnv); host != "" {
		switch {
		case err != nil:
			noNetns = "cannot tell its network namespace: " + err.Error()
		case self == host:
			noNetns = "still in the network namespace it was started in"
		default:
			noNetns = ""
		}
		return 0, false
	}
	switch {
	case os.Geteuid() != 0:
		noNetns = "needs root"
		return 0, false
	case err != nil:
		noNetns = "cannot tell its network namespace: " + err.Error()
		return 0, false
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		noNetns = err.Error()
		return 0, false
	}
	// Pdeathsig follows the thread that started the child.
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
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return exit.ExitCode(), true
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kernel-tun tests in their network namespace:", err)
		return 1, true
	}
	return 0, true
}

// needTUN skips (under CI fails) a test that makes interfaces unless it
// runs in the network namespace TestMain made.
func needTUN(t *testing.T) {
	t.Helper()
	if noNetns == "" {
		return
	}
	msg := "makes TUN interfaces, only in a network namespace of its own: " + noNetns
	if mustRun {
		t.Fatal(msg + " (CI=true or MYNETWORK_E2E=1 turns this skip into a failure)")
	}
	t.Skip(msg)
}
