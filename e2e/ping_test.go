package e2e

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPingCommand: 'mynetwork ping' reaches a peer by name and by mesh
// address, naming the path, the transport and the round trip; an unknown
// peer and one that no longer answers end in a non-zero exit with a clear
// message; 'mynetwork version' needs no daemon; up logs its version (here
// as JSON, by --log-format) and status shows it.
func TestPingCommand(t *testing.T) {
	requireE2E(t)
	nsA, _, a, b := vethPair(t, "pg", "10.131.0")

	t.Run("version without a daemon", func(t *testing.T) {
		out, err := a.cli("version")
		if err != nil || !regexp.MustCompile(`^mynetwork \S+.*, go1\.\d+`).MatchString(out) {
			t.Fatalf("version: %v\n%s", err, out)
		}
		if out2, err := nsA.try(a.bin, "--version"); err != nil || out2 != out {
			t.Errorf("--version: %v\n%s\nwant %s", err, out2, out)
		}
	})

	a.upArgs(t, "--log-format", "json")
	b.up(t)
	a.waitConnected(t, 30*time.Second)

	reply := regexp.MustCompile(`(?m)^reply from b \(` + regexp.QuoteMeta(b.v4) + `\): (lan|direct), (tcp|quic), [0-9.]+(µs|ms)$`)
	for _, target := range []string{"b", b.v4} {
		t.Run("ping "+target, func(t *testing.T) {
			out, err := a.cli("ping", "-n", "3", "--interval", "200ms", target)
			if err != nil || len(reply.FindAllString(out, -1)) != 3 || !strings.Contains(out, "3 sent, 3 received, round trip min/avg/max ") {
				t.Fatalf("ping %s: %v\n%s", target, err, out)
			}
			t.Logf("%s", out)
		})
	}

	t.Run("until direct stops at the first direct reply", func(t *testing.T) {
		out, err := a.cli("ping", "--until-direct", "b")
		if err != nil || len(reply.FindAllString(out, -1)) != 1 {
			t.Fatalf("ping --until-direct: %v\n%s", err, out)
		}
	})

	t.Run("an unknown peer", func(t *testing.T) {
		out, err := a.cli("ping", "nosuch")
		if err == nil || out != "mynetwork: ping nosuch: no configured peer is named or has the ID \"nosuch\"\n" {
			t.Fatalf("ping nosuch: %v\n%s", err, out)
		}
	})

	t.Run("up logs its version and status shows it", func(t *testing.T) {
		if !a.logged(`"msg":"mynetwork starting","version":`) {
			t.Error(`A's log has no JSON "mynetwork starting" line with the version`)
		}
		out, err := a.cli("status")
		if err != nil || !regexp.MustCompile(`(?m)^Version: \S+.*, go1\.\d+`).MatchString(out) {
			t.Errorf("status: %v\n%s", err, out)
		}
	})

	t.Run("a peer that stopped answers nothing: exit non-zero", func(t *testing.T) {
		b.daemon.stop(syscall.SIGKILL) // no goodbye: A's connection stays up until pings fail
		out, err := a.cli("ping", "-n", "2", "--interval", "100ms", "--timeout", "1s", "b")
		if err == nil || !strings.HasSuffix(out, "mynetwork: no reply from b\n") || !strings.Contains(out, "no reply: ") {
			t.Fatalf("ping of a stopped peer: %v\n%s", err, out)
		}
		t.Logf("%s", out)
	})
}
