package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestJoinByInvitation: A makes a mesh and invites B, then C, each of
// which joins with its token and comes up; nobody lists a peer by hand. B
// reaches C by address, by DNS name and by 'mynetwork ping' within 30 s of
// C coming up, with B's config untouched: it learns C from the mesh. A
// used, an expired and a malformed token are refused and change nothing.
// After A revokes C, B drops C within 30 s and refuses its packets.
func TestJoinByInvitation(t *testing.T) {
	requireE2E(t, "ping", "dig")
	tag := uniq(t)
	nsA := newNetns(t, "mnj"+tag+"-a")
	nsB := newNetns(t, "mnj"+tag+"-b")
	nsC := newNetns(t, "mnj"+tag+"-c")
	link(t, nsA, "eth0", "10.143.0.1/24", nsB, "eth0", "10.143.0.2/24")
	link(t, nsA, "eth1", "10.144.0.1/24", nsC, "eth0", "10.144.0.2/24")
	link(t, nsB, "eth1", "10.145.0.1/24", nsC, "eth1", "10.145.0.2/24")
	a := initNode(t, nsA, "mja"+tag)
	b := initNode(t, nsB, "mjb"+tag)
	c := initNode(t, nsC, "mjc"+tag)
	for _, n := range []*node{a, b, c} {
		isolate(t, n)
	}

	out, err := a.cli("mesh", "init", "--name", "a")
	if err != nil {
		t.Fatalf("mesh init: %v\n%s", err, out)
	}
	t.Logf("mesh init:\n%s", out)
	checkMode(t, strings.TrimSuffix(a.config, ".json")+".meshkey")
	aMesh := meshSection(t, a)
	if aMesh.Name != "a" || len(aMesh.Trust) != 1 || aMesh.SigningKey == "" || aMesh.Certificate == "" {
		t.Fatalf("mesh init wrote the mesh section %+v", aMesh)
	}
	a.up(t)

	joinMesh(t, b, "b", invite(t, a, "b"), aMesh.Trust)
	bConfig, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	b.up(t)
	ping(t, nsA, b.v4, 30*time.Second)
	eventually(t, 10*time.Second, "B's status listing a", func() error { return lists(b.status(t), "a", true) })

	tokenC := invite(t, a, "c")
	joinMesh(t, c, "c", tokenC, aMesh.Trust)
	c.up(t)
	begin := time.Now()
	ping(t, nsB, c.v4, 30*time.Second)
	t.Logf("B pinged C %.1f s after C was up", time.Since(begin).Seconds())
	eventually(t, 10*time.Second, "B's status listing c", func() error { return lists(b.status(t), "c", true) })
	eventually(t, 10*time.Second, "c.mynetwork.internal from B's mesh DNS", func() error {
		got, err := nsB.try("dig", "+time=2", "+tries=1", "@"+b.v4, "c.mynetwork.internal", "+short")
		if got = strings.TrimSpace(got); err != nil || got != c.v4 {
			return fmt.Errorf("dig: %v: %q, want %q", err, got, c.v4)
		}
		return nil
	})
	eventually(t, 10*time.Second, "mynetwork ping c from B", func() error {
		if out, err := b.cli("ping", "-n", "1", "c"); err != nil {
			return fmt.Errorf("%v: %s", err, lastLine(out))
		}
		return nil
	})
	t.Logf("B reached C by address, DNS name and mynetwork ping %.1f s after C was up", time.Since(begin).Seconds())
	if now, _ := os.ReadFile(b.config); !bytes.Equal(now, bConfig) {
		t.Errorf("B's config changed after its join:\nbefore:\n%s\nnow:\n%s", bConfig, now)
	}

	t.Run("a used, an expired or a malformed token changes nothing", func(t *testing.T) {
		// D only joins, never comes up, beside C's daemon: no listening,
		// so that nothing of D's can take C's port.
		d := initNode(t, nsC, "mjd"+tag)
		isolate(t, d)
		d.editConfig(t, func(cfg map[string]any) { cfg["listenAddresses"] = []any{} })

		joinFails(t, d, tokenC, "already used")
		expired := invite(t, a, "d", "--ttl", "1s")
		time.Sleep(2 * time.Second)
		joinFails(t, d, expired, "expired")
		const garbage = "mninv1garbage"
		joinFails(t, d, garbage, garbage)
	})

	out, err = a.cli("revoke", "c")
	if want := fmt.Sprintf("Revoked c (%s)", c.id); err != nil || !strings.Contains(out, want) {
		t.Fatalf("revoke c: %v, want %q in:\n%s", err, want, out)
	}
	begin = time.Now()
	eventually(t, 30*time.Second, "B dropping C", func() error {
		if err := lists(b.status(t), "c", false); err != nil {
			return err
		}
		if _, err := nsB.try("ping", "-c", "1", "-W", "1", c.v4); err == nil {
			return fmt.Errorf("B still pings C's %s", c.v4)
		}
		return nil
	})
	t.Logf("B dropped C %.1f s after the revocation", time.Since(begin).Seconds())
	if _, err := nsC.try("ping", "-c", "2", "-W", "1", b.v4); err == nil {
		t.Error("C still reaches B after its revocation")
	}
	ping(t, nsA, b.v4, 5*time.Second) // the revocation did not disturb B
}

// isolate keeps a node off the public DHT and mDNS: tests talk only to
// their own namespaces.
func isolate(t *testing.T, n *node) {
	t.Helper()
	n.editConfig(t, func(c map[string]any) {
		c["bootstrapPeers"] = []any{}
		c["mdns"] = false
	})
}

// mesh is a config's "mesh" section.
type mesh struct {
	Name        string   `json:"name"`
	Trust       []string `json:"trust"`
	SigningKey  string   `json:"signingKey"`
	Certificate string   `json:"certificate"`
}

func meshSection(t *testing.T, n *node) mesh {
	t.Helper()
	data, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Mesh *mesh `json:"mesh"`
	}
	if err := json.Unmarshal(data, &c); err != nil || c.Mesh == nil {
		t.Fatalf("%s: no mesh section (%v):\n%s", n.config, err, data)
	}
	return *c.Mesh
}

// checkMode fails unless path exists with mode 0600: it holds a secret.
func checkMode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %o, want 0600", path, fi.Mode().Perm())
	}
}

// invite asks the admin's daemon for a token for name. The token is
// stdout's first line, alone; hints go to stderr.
func invite(t *testing.T, admin *node, name string, flags ...string) string {
	t.Helper()
	args := append([]string{"netns", "exec", admin.ns.name, admin.bin, "-i", admin.iface, "-c", admin.config, "invite", name}, flags...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("invite %s: %v\n%s%s", name, err, stdout.String(), stderr.String())
	}
	line, _, _ := strings.Cut(stdout.String(), "\n")
	if !strings.HasPrefix(line, "mninv1") || strings.ContainsAny(line, " \t") {
		t.Fatalf("invite %s: stdout's first line is no token:\n%s", name, stdout.String())
	}
	return line
}

// joinMesh runs 'mynetwork join' on n's config (its daemon not running)
// and checks what it printed and wrote.
func joinMesh(t *testing.T, n *node, name, token string, trust []string) {
	t.Helper()
	out, err := n.cli("join", token)
	if err != nil {
		t.Fatalf("join as %s: %v\n%s", name, err, out)
	}
	if want := fmt.Sprintf(" as %s (%s, %s)", name, n.v4, n.v6); !strings.Contains(out, "Joined mesh ") || !strings.Contains(out, want) {
		t.Errorf("join as %s: want \"Joined mesh FINGERPRINT%s\" in:\n%s", name, want, out)
	}
	m := meshSection(t, n)
	if m.Name != name || strings.Join(m.Trust, ",") != strings.Join(trust, ",") || m.Certificate == "" {
		t.Errorf("join as %s wrote the mesh section %+v, want name %s and trust %v", name, m, name, trust)
	}
	checkMode(t, strings.TrimSuffix(n.config, ".json")+".members.json")
}

// joinFails runs 'mynetwork join' with a token that must be refused with
// an error containing want, and checks that n's config is as it was and
// that no member file appeared.
func joinFails(t *testing.T, n *node, token, want string) {
	t.Helper()
	before, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.cli("join", token)
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("join %.20s...: %v, want a failure with %q:\n%s", token, err, want, out)
	}
	t.Logf("join %.20s...: %s", token, lastLine(out))
	if after, _ := os.ReadFile(n.config); !bytes.Equal(after, before) {
		t.Errorf("a failed join (%q) changed the config:\nbefore:\n%s\nafter:\n%s", want, before, after)
	}
	if _, err := os.Stat(strings.TrimSuffix(n.config, ".json") + ".members.json"); err == nil {
		t.Errorf("a failed join (%q) wrote a member file", want)
	}
}

// lists checks that s lists a peer named name (connected), or lists none.
func lists(s status, name string, want bool) error {
	for _, p := range s.Peers {
		if p.Name != name {
			continue
		}
		switch {
		case !want:
			return fmt.Errorf("status still lists %s", name)
		case !p.Connected:
			return fmt.Errorf("%s not connected: %s", name, p.Why)
		}
		return nil
	}
	if want {
		return fmt.Errorf("status lists no %s", name)
	}
	return nil
}
