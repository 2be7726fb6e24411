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
