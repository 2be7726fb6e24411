package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/control"
)

// maxPingTimeout is the daemon's own cap on the wait for a reply.
const maxPingTimeout = 5 * time.Second

// pingOptions are ping's flags.
type pingOptions struct {
	count       int // 0: until interrupted
	interval    time.Duration
	timeout     time.Duration
	untilDirect bool
	asJSON      bool
}

// pinger is what ping needs of the daemon: control.Client, or a fake.
type pinger interface {
	Ping(ctx context.Context, req control.PingRequest) (control.PingReply, error)
}

func newPingCmd(opts *rootOptions) *cobra.Command {
	po := pingOptions{}
	cmd := &cobra.Command{
		Use:   "ping NAME|IP",
		Short: "Ping a peer over the mesh: path, transport and round trip of each reply",
		Long: "Pings a configured peer (by name, peer ID, or an IP address on the mesh) on the\n" +
			"connection its packets use, and prints for each reply the path (lan, direct,\n" +
			"or relay via a relay), the transport (tcp or quic) and the round trip.\n" +
			"Exits non-zero when the peer never answers. -c and -i are the global\n" +
			"--config and --interface flags: the count is -n, the interval --interval.",
		Example: "  mynetwork ping ms1\n" +
			"  mynetwork ping -n 10 --interval 200ms 100.64.12.34\n" +
			"  mynetwork ping --until-direct ms1    # after a relay meeting: stop once direct",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if po.untilDirect && !cmd.Flags().Changed("count") {
				po.count = 0
			}
			if err := po.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runPing(ctx, opts.client(), args[0], po, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVarP(&po.count, "count", "n", 4, "stop after this many pings; 0: until interrupted (the default with --until-direct)")
	cmd.Flags().DurationVar(&po.interval, "interval", time.Second, "wait between pings")
	cmd.Flags().DurationVar(&po.timeout, "timeout", maxPingTimeout, "wait for each reply (at most 5s)")
	cmd.Flags().BoolVar(&po.untilDirect, "until-direct", false, "stop at the first reply over a direct (or LAN) path; fail if none came")
	cmd.Flags().BoolVar(&po.asJSON, "json", false, "print each reply as a line of JSON")
	return cmd
}

func (po pingOptions) check() error {
	switch {
	case po.count < 0:
		return fmt.Errorf("--count %d: must be 0 (until interrupted) or more", po.count)
	case po.interval < 10*time.Millisecond:
		return fmt.Errorf("--interval %s: must be at least 10ms", po.interval)
	case po.timeout <= 0 || po.timeout > maxPingTimeout:
		return fmt.Errorf("--timeout %s: must be more than 0 and at most %s", po.timeout, maxPingTimeout)
	}
	return nil
}

// pingStats sums up a run of pings.
type pingStats struct {
	sent, received int
	min, max, sum  float64
	direct         bool // a reply came over a direct or LAN path
}

func (s *pingStats) add(r control.PingReply) {
	if s.received == 0 || r.RTTMillis < s.min {
		s.min = r.RTTMillis
	}
	s.max = max(s.max, r.RTTMillis)
	s.sum += r.RTTMillis
	s.received++
	s.direct = s.direct || r.Path != "relay"
}
