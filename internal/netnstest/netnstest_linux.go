package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
)

func netnsInode() (string, error) {
	fi, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10), nil
}

// Run runs the test binary again, with the same flags, as a child in a new
// network namespace, and returns its exit code. It returns ran false where
// the tests should run in this process: in the child, or where the
// namespace cannot be made (then Need says why).
func Run(o Options) (code int, ran bool) {
	self, err := netnsInode()
	if host := os.Getenv(o.Env); host != "" {
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
	for _, f := range o.Files {
		if _, err := os.Stat(f); err != nil {
			noNetns = err.Error()
			return 0, false
		}
	}
	// Pdeathsig follows the thread that started the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), o.Env+"="+self)
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
		fmt.Fprintln(os.Stderr, o.Name+" in their network namespace:", err)
		return 1, true
	}
	return 0, true
}
