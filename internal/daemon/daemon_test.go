package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mynetwork/mynetwork/config"
)

func TestWarnIfConfigReadableByOthers(t *testing.T) {
	c, err := config.Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ms0.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	WarnIfExposed(path, log)
	if out.Len() != 0 {
		t.Fatalf("warned about a 0600 file: %s", out.String())
	}
	os.Chmod(path, 0o644)
	WarnIfExposed(path, log)
	if !strings.Contains(out.String(), "config file holds the private key but others can read it; run chmod 600") {
		t.Fatalf("no warning for a 0644 file: %q", out.String())
	}
	if strings.Contains(out.String(), c.PrivateKey) {
		t.Fatal("the private key was logged")
	}
}

func TestNewRefusesABadInterfaceName(t *testing.T) {
	for _, o := range []Options{
		{Interface: "../../x"},
		{Interface: "../../x", SocketPath: filepath.Join(t.TempDir(), "ms0.sock")},
	} {
		_, err := New(o)
		want := `interface name "../../x" is not valid: use 1 to 15 letters, digits, '.', '_' or '-' (not "." or "..")`
		if err == nil || err.Error() != want {
			t.Errorf("%+v: got %v, want %s", o, err, want)
		}
	}
}
