package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestLogOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    logOptions
		wantErr string
		check   func(out string) bool // after a Debug and a Warn line
	}{
		{"text info", logOptions{level: "info", format: "text"}, "", func(out string) bool {
			return !strings.Contains(out, "msg=dbg") && strings.Contains(out, "level=WARN msg=wrn")
		}},
		{"json debug", logOptions{level: "DEBUG", format: "json"}, "", func(out string) bool {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var m map[string]any
			return len(lines) == 2 && json.Unmarshal([]byte(lines[0]), &m) == nil && m["msg"] == "dbg"
		}},
		{"-v lowers error to debug", logOptions{level: "error", format: "text", verbose: true}, "", func(out string) bool {
			return strings.Contains(out, "msg=dbg")
		}},
		{"error only", logOptions{level: "error", format: "text"}, "", func(out string) bool { return out == "" }},
		{"bad level", logOptions{level: "loud", format: "text"}, `--log-level "loud": use debug, info, warn or error`, nil},
		{"bad format", logOptions{level: "info", format: "xml"}, `--log-format "xml": use text or json`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			log, err := tc.opts.logger(&out)
			if errString(err) != tc.wantErr {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			log.Debug("dbg")
			log.Warn("wrn")
			if !tc.check(out.String()) {
				t.Errorf("log:\n%s", out.String())
			}
		})
	}
}

// TestUpRefusesBadLogFlags: up says which flag is wrong before it does
// anything.
func TestUpRefusesBadLogFlags(t *testing.T) {
	_, err := run(t, "up", "--log-format", "xml", "-c", "/nonexistent/mynetwork.json")
	if err == nil || err.Error() != `--log-format "xml": use text or json` {
		t.Errorf("got %v", err)
	}
}

// TestEveryCommandHasAnExample: each command's --help shows how to use it.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(prefix string, cmds []*cobra.Command)
	walk = func(prefix string, cmds []*cobra.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name())
			if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
				continue
			}
			if c.Example == "" {
				t.Errorf("%s has no example in its --help", name)
			}
			walk(name, c.Commands())
		}
	}
	walk("", newRootCmd().Commands())
}
