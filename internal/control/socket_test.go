package control

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is the uid that planted folders and sockets belong to.
const nobody = 65534

func TestValidInterface(t *testing.T) {
	for _, tc := range []struct {
		name, iface string
		ok          bool
	}{
		{"path out of the folder", "../../x", false},
		{"empty", "", false},
		{"slash", "a/b", false},
		{"16 characters", "abcdefghijklmnop", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"colon", "ms0:1", false},
		{"plain", "ms0", true},
		{"every allowed kind", "tun.1_a-b", true},
		{"15 characters", "abcdefghijklmno", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidInterface(tc.iface)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			want := fmt.Sprintf(`interface name %q is not valid: use 1 to 15 letters, digits, '.', '_' or '-' (not "." or "..")`, tc.iface)
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %s", err, want)
			}
			if _, err := SocketPath(tc.iface); err == nil || err.Error() != want {
				t.Fatalf("SocketPath: got %v, want %s", err, want)
			}
		})
	}
}

func TestSocketPathPrefersXDGRuntimeDir(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	want := filepath.Join(xdg, "mynetwork", "ms0.sock")
	if os.Geteuid() == 0 {
		want = "/run/mynetwork/ms0.sock"
	}
	if got, err := SocketPath("ms0"); err != nil || got != want {
		t.Fatalf("got %q %v, want %q", got, err, want)
	}
}

// socketIn is a socket path in a new folder that Listen accepts (a test's
// temporary folder is 0755 for a user other than root).
func socketIn(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// plant makes the socket folder as another user (or a careless one) might
// have left it, with a stale-looking socket file that Listen must not
// remove, and returns the socket path in it.
func plant(t *testing.T, setup func(dir string) error) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mynetwork-0")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ms0.sock")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := setup(dir); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestListenRefusesAFolderNotItsOwn(t *testing.T) {
	root := os.Geteuid() == 0
	for _, tc := range []struct {
		name   string
		setup  func(dir string) error
		asRoot bool   // the case needs root (chown)
		okRoot bool   // root accepts it
		want   string // %[1]s is the folder
	}{
		{
			name:   "another user's",
			setup:  func(dir string) error { return os.Chown(dir, nobody, nobody) },
			asRoot: true,
			want:   "control socket folder %[1]s belongs to uid 65534, not to you (uid 0): another user may have made it to pose as your daemon; refusing it (remove it as root or its owner, or set XDG_RUNTIME_DIR to a folder of your own)",
		},
		{
			name:  "writable by others",
			setup: func(dir string) error { return os.Chmod(dir, 0o777) },
			want:  "control socket folder %[1]s has mode 0777: others could replace the socket in it (run chmod 700 %[1]s)",
		},
		{
			name:   "open to others",
			setup:  func(dir string) error { return os.Chmod(dir, 0o755) },
			okRoot: true,
			want:   "control socket folder %[1]s has mode 0755: others could replace the socket in it (run chmod 700 %[1]s)",
		},
		{
			name: "a symbolic link",
			setup: func(dir string) error {
				if err := os.Rename(dir, dir+".real"); err != nil {
					return err
				}
				return os.Symlink(dir+".real", dir)
			},
			want: "control socket folder %[1]s is a symbolic link; refusing it, since it may lead to another user's folder (remove it and start the daemon again)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && !root {
				t.Skip("needs root to give the folder to another user")
			}
			path := plant(t, tc.setup)
			ln, err := Listen(path)
			if tc.okRoot && root {
				if err != nil {
					t.Fatalf("root refused its 0755 folder: %v", err)
				}
				ln.Close()
				return
			}
			if err == nil {
				ln.Close()
				t.Fatal("Listen accepted the folder")
			}
			if want := fmt.Sprintf(tc.want, filepath.Dir(path)); err.Error() != want {
				t.Fatalf("got  %v\nwant %s", err, want)
			}
			if _, err := os.Lstat(path); err != nil {
				t.Fatalf("the file in the refused folder was touched: %v", err)
			}
		})
	}
}

func TestClientRefusesASocketNotItsOwn(t *testing.T) {
	root := os.Geteuid() == 0
	for _, tc := range []struct {
		name   string
		change func(path string) error
		asRoot bool
		want   string // %[1]s is the socket, %[2]s its folder
	}{
		{
			name:   "socket of another user",
			change: func(path string) error { return os.Lchown(path, nobody, nobody) },
			asRoot: true,
			want:   "control socket %[1]s belongs to uid 65534, not to you (uid 0): another user may have made it to pose as your daemon; refusing it (remove it as root or its owner, or set XDG_RUNTIME_DIR to a folder of your own)",
		},
		{
			name:   "folder of another user",
			change: func(path string) error { return os.Chown(filepath.Dir(path), nobody, nobody) },
			asRoot: true,
			want:   "control socket folder %[2]s belongs to uid 65534, not to you (uid 0): another user may have made it to pose as your daemon; refusing it (remove it as root or its owner, or set XDG_RUNTIME_DIR to a folder of your own)",
		},
		{
			name:   "folder writable by others",
			change: func(path string) error { return os.Chmod(filepath.Dir(path), 0o777) },
			want:   "control socket folder %[2]s has mode 0777: others could replace the socket in it (run chmod 700 %[2]s)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && !root {
				t.Skip("needs root to give the socket to another user")
			}
			path := socketIn(t, "ms0.sock")
			serve(t, path)
			if err := tc.change(path); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(tc.want, path, filepath.Dir(path))
			c := NewClient("ms0", path)
			if s, err := c.Status(context.Background()); err == nil || err.Error() != want {
				t.Fatalf("status: got %+v %v\nwant %s", s, err, want)
			}
			if conn, err := c.Dial(context.Background(), "echo", 7); err == nil || err.Error() != want {
				if conn != nil {
					conn.Close()
				}
				t.Fatalf("dial: got %v\nwant %s", err, want)
			}
		})
	}
}

func TestClientRefusesASymlinkedFolder(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real")
	os.Mkdir(real, 0o700)
	serve(t, filepath.Join(real, "ms0.sock"))
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	_, err := NewClient("ms0", filepath.Join(link, "ms0.sock")).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "control socket folder "+link+" is a symbolic link") {
		t.Fatalf("got %v", err)
	}
}
