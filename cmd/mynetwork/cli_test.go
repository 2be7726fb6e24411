package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mynetwork/mynetwork/config"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ms0.json")
	out, err := run(t, "init", "-c", path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\{"name": "[A-Za-z0-9-]+", "id": "(12D3Koo\w+)"\}`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no peer snippet in:\n%s", out)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := c.ID()
	if id.String() != m[1] {
		t.Errorf("printed ID %s, file has %s", m[1], id)
	}
	a := config.AddressesOf(id)
	if !strings.Contains(out, "mesh addresses: "+a.IPv4.String()+" and "+a.IPv6.String()) {
		t.Errorf("addresses missing:\n%s", out)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}

	before, _ := os.ReadFile(path)
	_, err = run(t, "i", "-c", path)
	if err == nil || !strings.Contains(err.Error(), path+" already exists and holds this node's identity; use --force to replace it") {
		t.Errorf("overwrite without --force: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("file changed after a refused init")
	}
	if _, err := run(t, "init", "-c", path, "--force"); err != nil {
		t.Errorf("--force: %v", err)
	}
	if after, _ := os.ReadFile(path); bytes.Equal(before, after) {
		t.Error("--force did not replace the identity")
	}
}

func TestInitDefaultPathFollowsInterface(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, err := run(t, "init", "-i", "ms7"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ms7.json")); err != nil {
		t.Errorf("init -i ms7 did not write ms7.json: %v", err)
	}
}

func TestNoDaemon(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	iface := fmt.Sprintf("mnt%x", rand.Uint32())
	for _, args := range [][]string{{"status"}, {"s", "--json"}, {"peers"}, {"route"}, {"r", "show"}, {"route", "add", "10.0.0.0/8", "b"}, {"route", "del", "10.0.0.0/8"}} {
		_, err := run(t, append(args, "-i", iface)...)
		if err == nil || !strings.Contains(err.Error(), "no mynetwork daemon is running on interface "+iface) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestUpWithBadConfigFailsBeforeTouchingTheSystem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(path, []byte(`{"peers": [], "privateKey": "z1", "extra": true}`), 0o600)
	_, err := run(t, "up", "-c", path)
	if err == nil || !strings.Contains(err.Error(), path+`: extra: unknown key "extra" in the top level`) {
		t.Errorf("got %v", err)
	}
	_, err = run(t, "up", "-c", filepath.Join(t.TempDir(), "none.json"))
	if err == nil || !strings.Contains(err.Error(), "does not exist (create it with 'mynetwork init')") {
		t.Errorf("got %v", err)
	}
}

func TestHelpAlias(t *testing.T) {
	out, err := run(t, "?", "route")
	if err != nil || !strings.Contains(out, "route add <cidr>") && !strings.Contains(out, "Show, add or delete routes") {
		t.Errorf("help alias: %v\n%s", err, out)
	}
}

func TestDaemonProcs(t *testing.T) {
	for _, tc := range []struct {
		env       string
		current   int
		want      int
		overrides bool
	}{
		{"", 1, 1, true},
		{"", 2, 1, true},
		{"", 4, 2, true},
		{"", 9, 4, true},
		{"3", 8, 0, false}, // the user's GOMAXPROCS stands
	} {
		n, ok := daemonProcs(tc.env, tc.current)
		if n != tc.want || ok != tc.overrides {
			t.Errorf("daemonProcs(%q, %d) = %d, %v; want %d, %v", tc.env, tc.current, n, ok, tc.want, tc.overrides)
		}
	}
}
