package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mynetwork/mynetwork/internal/control"
)

// runPing pings target until count, an interrupt, or (with untilDirect)
// a direct reply. Only a ping the mesh did not answer is reported and
// retried; anything else (no such peer, no daemon) ends the run at once.
func runPing(ctx context.Context, p pinger, target string, po pingOptions, out io.Writer) error {
	var st pingStats
	for i := 0; po.count == 0 || i < po.count; i++ {
		if i > 0 && !pause(ctx, po.interval) {
			break
		}
		rctx, cancel := context.WithTimeout(ctx, po.timeout+2*time.Second) // the daemon's own wait, and some
		r, err := p.Ping(rctx, control.PingRequest{Peer: target, TimeoutMillis: po.timeout.Milliseconds()})
		cancel()
		if ctx.Err() != nil {
			break // interrupted: what was answered so far is the result
		}
		st.sent++
		if err != nil {
			if !errors.Is(err, control.ErrMesh) {
				return err
			}
			fmt.Fprintf(out, "no reply: %s\n", err)
			continue
		}
		st.add(r)
		if err := writePong(out, r, po.asJSON); err != nil {
			return err
		}
		if po.untilDirect && r.Path != "relay" {
			break
		}
	}
	return pingResult(out, target, st, po)
}

// pause waits d, and reports false if ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// writePong prints one reply: who, over which path and transport, and
// the round trip.
func writePong(out io.Writer, r control.PingReply, asJSON bool) error {
	if asJSON {
		return writeJSONLine(out, r)
	}
	path := r.Path
	if r.Path == "relay" {
		path = "relay via " + r.Relay
	}
	_, err := fmt.Fprintf(out, "reply from %s (%s): %s, %s, %s\n", r.Name, r.IPv4, path, r.Transport, rtt(r.RTTMillis))
	return err
}

// pingResult prints the summary (not with --json) and says whether the
// run failed: no reply at all, or no direct one with --until-direct.
func pingResult(out io.Writer, target string, st pingStats, po pingOptions) error {
	if !po.asJSON && st.sent > 0 {
		fmt.Fprintf(out, "%d sent, %d received", st.sent, st.received)
		if st.received > 0 {
			fmt.Fprintf(out, ", round trip min/avg/max %s/%s/%s", rtt(st.min), rtt(st.sum/float64(st.received)), rtt(st.max))
		}
		fmt.Fprintln(out)
	}
	switch {
	case st.received == 0:
		return fmt.Errorf("no reply from %s", target)
	case po.untilDirect && !st.direct:
		return fmt.Errorf("%s answered only through a relay (%d replies); no direct path yet", target, st.received)
	}
	return nil
}
