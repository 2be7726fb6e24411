package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/internal/control"
)

// script is a daemon whose pings answer in turn from a list; past its
// end, the last answer again.
type script struct {
	replies []control.PingReply
	errs    []error
	n       int
}

func (s *script) Ping(context.Context, control.PingRequest) (control.PingReply, error) {
	i := min(s.n, len(s.replies)-1)
	s.n++
	return s.replies[i], s.errs[i]
}

var (
	lan     = control.PingReply{Name: "ms1", IPv4: "100.64.0.2", Path: "lan", Transport: "tcp", RTTMillis: 0.412}
	relayed = control.PingReply{Name: "ms1", IPv4: "100.64.0.2", Path: "relay", Relay: "r", Transport: "quic", RTTMillis: 80.25}
	direct  = control.PingReply{Name: "ms1", IPv4: "100.64.0.2", Path: "direct", Transport: "quic", RTTMillis: 21.5}
	lost    = control.Errorf(control.ErrMesh, "no answer from ms1 within 5s")
)

func TestRunPing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		daemon  *script
		po      pingOptions
		want    string
		wantErr string
		pings   int
	}{
		{"answered", &script{replies: []control.PingReply{lan}, errs: []error{nil}}, pingOptions{count: 2},
			"reply from ms1 (100.64.0.2): lan, tcp, 412µs\nreply from ms1 (100.64.0.2): lan, tcp, 412µs\n2 sent, 2 received, round trip min/avg/max 412µs/412µs/412µs\n", "", 2},
		{"until direct", &script{replies: []control.PingReply{relayed, direct, direct}, errs: []error{nil, nil, nil}}, pingOptions{untilDirect: true},
			"reply from ms1 (100.64.0.2): relay via r, quic, 80.2ms\nreply from ms1 (100.64.0.2): direct, quic, 21.5ms\n2 sent, 2 received, round trip min/avg/max 21.5ms/50.9ms/80.2ms\n", "", 2},
		{"never direct", &script{replies: []control.PingReply{relayed}, errs: []error{nil}}, pingOptions{count: 1, untilDirect: true},
			"reply from ms1 (100.64.0.2): relay via r, quic, 80.2ms\n1 sent, 1 received, round trip min/avg/max 80.2ms/80.2ms/80.2ms\n",
			"ms1 answered only through a relay (1 replies); no direct path yet", 1},
		{"some lost", &script{replies: []control.PingReply{{}, lan}, errs: []error{lost, nil}}, pingOptions{count: 2},
			"no reply: no answer from ms1 within 5s\nreply from ms1 (100.64.0.2): lan, tcp, 412µs\n2 sent, 1 received, round trip min/avg/max 412µs/412µs/412µs\n", "", 2},
		{"no answer", &script{replies: []control.PingReply{{}}, errs: []error{lost}}, pingOptions{count: 2},
			"no reply: no answer from ms1 within 5s\nno reply: no answer from ms1 within 5s\n2 sent, 0 received\n", "no reply from ms1", 2},
		{"no such peer", &script{replies: []control.PingReply{{}}, errs: []error{control.Errorf(control.ErrNotFound, `ping ms1: no configured peer is named or has the ID "ms1"`)}}, pingOptions{count: 3},
			"", `ping ms1: no configured peer is named or has the ID "ms1"`, 1},
		{"json", &script{replies: []control.PingReply{relayed}, errs: []error{nil}}, pingOptions{count: 1, asJSON: true},
			`{"name":"ms1","id":"","ipv4":"100.64.0.2","path":"relay","relay":"r","transport":"quic","addr":"","rttMs":80.25}` + "\n", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			tc.po.interval, tc.po.timeout = time.Millisecond, time.Second
			err := runPing(context.Background(), tc.daemon, "ms1", tc.po, &out)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error %q, want %q", got, tc.wantErr)
			}
			if out.String() != tc.want || tc.daemon.n != tc.pings {
				t.Errorf("%d pings, output:\n%s\nwant %d:\n%s", tc.daemon.n, out.String(), tc.pings, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestRunPingInterrupted: an interrupt ends the run with what was answered.
func TestRunPingInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d := &script{replies: []control.PingReply{lan}, errs: []error{nil}}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	var out bytes.Buffer
	err := runPing(ctx, d, "ms1", pingOptions{interval: 10 * time.Millisecond, timeout: time.Second}, &out)
	if err != nil || !strings.Contains(out.String(), " received, round trip") {
		t.Errorf("%v\n%s", err, out.String())
	}
}

func TestPingFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"count", []string{"-n", "-1"}, "--count -1: must be 0 (until interrupted) or more"},
		{"interval", []string{"--interval", "1ms"}, "--interval 1ms: must be at least 10ms"},
		{"timeout", []string{"--timeout", "10s"}, "--timeout 10s: must be more than 0 and at most 5s"},
		{"no peer", nil, "accepts 1 arg(s), received 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"ping"}, tc.args...)
			if tc.args != nil {
				args = append(args, "ms1")
			}
			if _, err := run(t, args...); err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-i", "bad/name", "version"}} {
		out, err := run(t, args...)
		if err != nil || !strings.HasPrefix(out, "mynetwork ") || !strings.Contains(out, ", go1.") {
			t.Errorf("%v: %q %v", args, out, err)
		}
	}
}

var _ pinger = (*control.Client)(nil)
