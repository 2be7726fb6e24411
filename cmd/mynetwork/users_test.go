package main

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"go.uber.org/goleak"
)

// TestMain lets a test run this binary as the mynetwork command, so that it
// can run it as another user (see asUser). The tests run commands in this
// process, and no goroutine of theirs may outlive them.
func TestMain(m *testing.M) {
	if os.Getenv("MYNETWORK_TEST_RUN_CLI") == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestBadInterfaceRefusedBeforeAnythingIsTouched(t *testing.T) {
	// Deep enough that, were -i taken as a path, "../../x.json" would
	// still be in base (and seen below), and "up" finds no config to run.
	base := t.TempDir()
	t.Chdir(base)
	os.MkdirAll("a/b", 0o700)
	t.Chdir("a/b")
	noConfig := filepath.Join(base, "none.json")
	for _, tc := range []struct{ name, iface string }{
		{"path out of the folder", "../../x"},
		{"empty", ""},
		{"slash", "a/b"},
		{"16 characters", "abcdefghijklmnop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := `-i/--interface: interface name "` + tc.iface + `" is not valid: use 1 to 15 letters, digits, '.', '_' or '-' (not "." or "..")`
			for _, args := range [][]string{{"init"}, {"up", "--userspace", "-c", noConfig}, {"status"}, {"peers"}, {"route"}, {"route", "del", "10.0.0.0/8"}, {"nc", "b", "22"}, {"ping", "b"}} {
				if _, err := run(t, append(args, "-i", tc.iface)...); err == nil || err.Error() != want {
					t.Errorf("%v: got %v\nwant %s", args, err, want)
				}
			}
		})
	}
	filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("%s was made", path)
		}
		return nil
	})
	for _, iface := range []string{"ms0", "tun.1_a-b"} {
		if _, err := run(t, "status", "-i", iface); err == nil || !strings.Contains(err.Error(), "no mynetwork daemon is running on interface "+iface) {
			t.Errorf("-i %s: %v", iface, err)
		}
	}
}

// posing answers status with a peer ID of its own, as another user's daemon
// would.
type posing struct{ control.Backend }

const posingID = "12D3KooWPosingAsYourDaemon"

func (posing) Status(context.Context) (control.Status, error) {
	return control.Status{PeerID: posingID, Interface: "ms0", Mode: "userspace"}, nil
}

// serveAt serves posing on a socket at path, made by the test (root) and
// then given to uid with the given mode.
func serveAt(t *testing.T, path string, uid int, mode os.FileMode) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(posing{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestOtherUsersCannotPoseAsYourDaemon runs the CLI as user nobody against
// a socket folder another user made first in the shared temporary
// directory, and against root's daemon.
// startLine is the line up logs first, with its version.
var startLine = regexp.MustCompile(`(?m)^time=\S+ level=INFO msg="mynetwork starting" .*\n`)

func TestOtherUsersCannotPoseAsYourDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run commands as other users")
	}
	const victim, attacker = 65534, 65533
	base, err := os.MkdirTemp("", "mynetwork-users")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	bin := filepath.Join(base, "mynetwork")
	copyFile(t, bin)
	shared := filepath.Join(base, "tmp") // like /tmp
	os.Mkdir(shared, 0o777|os.ModeSticky)
	os.Chmod(shared, 0o777|os.ModeSticky)

	// The attacker makes the victim's socket folder before the victim's
	// first daemon does, and serves a daemon of its own in it.
	planted := filepath.Join(shared, "mynetwork-65534")
	os.Mkdir(planted, 0o755)
	os.Chown(planted, attacker, attacker)
	serveAt(t, filepath.Join(planted, "ms0.sock"), attacker, 0o666)

	env := []string{"TMPDIR=" + shared}
	out, err := asUser(t, bin, victim, env, "status", "-i", "ms0")
	want := "mynetwork: control socket folder " + planted + " belongs to uid 65533, not to you (uid 65534) or root: another user may have made it to pose as your daemon; refusing it (remove it as root or its owner, or set XDG_RUNTIME_DIR to a folder of your own)\n"
	if err == nil || out != want {
		t.Errorf("status in a planted folder: %v\n%s\nwant %s", err, out, want)
	}

	c, err := config.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(base, "victim.json")
	if err := c.Save(cfgPath); err != nil {
		t.Fatal(err)
	}
	os.Chown(cfgPath, victim, victim)
	out, err = asUser(t, bin, victim, env, "up", "--userspace", "-i", "ms0", "-c", cfgPath)
	want = "mynetwork: control socket folder " + planted + " belongs to uid 65533, not to you (uid 65534): another user may have made it to pose as your daemon; refusing it (remove it as root or its owner, or set XDG_RUNTIME_DIR to a folder of your own)\n"
	if out = startLine.ReplaceAllString(out, ""); err == nil || out != want { // up logs its version first
		t.Errorf("up in a planted folder: %v\n%s\nwant %s", err, out, want)
	}

	// Root's daemon, in a folder nobody may enter or with a socket only
	// root may use, does not answer nobody.
	runDir := filepath.Join(base, "run")
	os.Mkdir(runDir, 0o755)
	sock := filepath.Join(runDir, "mynetwork", "ms0.sock")
	serveDaemon(t, sock, posing{})
	env = []string{"XDG_RUNTIME_DIR=" + runDir}
	want = "mynetwork: cannot reach the daemon of ms0 at " + sock + ": permission denied (run as the user who started it, or with sudo)\n"
	for _, mode := range []os.FileMode{0o700, 0o755} {
		os.Chmod(filepath.Dir(sock), mode)
		if out, err := asUser(t, bin, victim, env, "status", "-i", "ms0"); err == nil || out != want {
			t.Errorf("root's daemon, folder %#o: %v\n%s\nwant %s", mode, err, out, want)
		}
	}
}

// copyFile copies this test binary to bin, for other users to run.
func copyFile(t *testing.T, bin string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// asUser runs the CLI as uid (with the group of the same number and no
// others) and returns what it printed.
func asUser(t *testing.T, bin string, uid int, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "/"
	cmd.Env = append([]string{"MYNETWORK_TEST_RUN_CLI=1", "HOME=/", "PATH=/usr/bin:/bin"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
