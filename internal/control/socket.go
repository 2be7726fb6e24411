package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// ifaceName is what Linux accepts as an interface name (IFNAMSIZ is 16 with
// the terminating NUL), without the characters that make a file name a path.
var ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// ValidInterface refuses an interface name that could not name a kernel
// interface or that would lead the control socket's path (and the default
// config file's) out of its folder, as "../../x" would.
func ValidInterface(name string) error {
	if !ifaceName.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf(`interface name %q is not valid: use 1 to 15 letters, digits, '.', '_' or '-' (not "." or "..")`, name)
	}
	return nil
}

// SocketPath is where the daemon for iface listens: /run/mynetwork as root,
// else $XDG_RUNTIME_DIR/mynetwork, else a 0700 folder of the user's in the
// temporary directory. One socket per interface name.
func SocketPath(iface string) (string, error) {
	if err := ValidInterface(iface); err != nil {
		return "", err
	}
	return filepath.Join(socketDir(), iface+".sock"), nil
}

func socketDir() string {
	if os.Geteuid() == 0 {
		return "/run/mynetwork"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "mynetwork")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("mynetwork-%d", os.Geteuid()))
}

// ErrRunning means another daemon already serves the socket.
var ErrRunning = errors.New("already running")

// Listen claims the control socket for an interface. A live socket means
// another daemon runs on that interface (ErrRunning); a stale one, left by a
// crash, is replaced. The socket is mode 0600, in a folder that must be the
// user's own and closed to others: in a shared temporary directory another
// user could have made it first, and clients would reach their daemon.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control socket folder: %w", err)
	}
	// Root's folder may be 0755: the socket itself is 0600.
	closed := fs.FileMode(0o077)
	if os.Geteuid() == 0 {
		closed = 0o022
	}
	if err := checkFolder(dir, closed, os.Geteuid()); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a mynetwork daemon is %w on %s", ErrRunning, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// trustedOwners are the users whose daemon a client may believe: itself,
// and root (whose daemon a user reaches only if root made it so).
func trustedOwners() []int {
	if euid := os.Geteuid(); euid != 0 {
		return []int{euid, 0}
	}
	return []int{0}
}

// checkSocket refuses a control socket that belongs, or whose folder
// belongs, to a user the client does not trust: the daemon behind it would
// answer with another node's identity. Clients call it once connected, so
// that what they check is what they reached (the folder, closed to others,
// keeps the socket from being swapped afterwards).
func checkSocket(path string) error {
	if err := checkFolder(filepath.Dir(path), 0o022, trustedOwners()...); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s is not a socket (%s)", path, fi.Mode().Type())
	}
	return checkOwner("control socket", path, fi, trustedOwners())
}

// checkFolder refuses a control socket folder that is a symbolic link, not
// a folder, not owned by one of owners, or has any of the permission bits
// in closed.
func checkFolder(dir string, closed fs.FileMode, owners ...int) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control socket folder: %w", err)
	}
	if fi.Mode().Type() == fs.ModeSymlink {
		return fmt.Errorf("control socket folder %s is a symbolic link; refusing it, since it may lead to another user's folder (remove it and start the daemon again)", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control socket folder %s is not a folder (remove it and start the daemon again)", dir)
	}
	if err := checkOwner("control socket folder", dir, fi, owners); err != nil {
		return err
	}
	if _, ok := fileOwner(fi); ok && fi.Mode().Perm()&closed != 0 {
		return fmt.Errorf("control socket folder %s has mode %#o: others could replace the socket in it (run chmod 700 %s)", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// checkOwner refuses what (named what, at path) if its owner is none of
// owners. Where files have no owner (Windows), it accepts.
func checkOwner(what, path string, fi fs.FileInfo, owners []int) error {
	uid, ok := fileOwner(fi)
	if !ok {
		return nil
	}
	for _, o := range owners {
		if uid == o {
			return nil
		}
	}
	you := fmt.Sprintf("you (uid %d)", owners[0])
	if len(owners) > 1 {
		you += " or root"
	}
	return fmt.Errorf("%s %s belongs to uid %d, not to %s: another user may have made it to pose as your daemon; refusing it (remove it as root or its owner, or set XDG_RUNTIME_DIR to a folder of your own)", what, path, uid, you)
}
