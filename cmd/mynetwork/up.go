package main

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/daemon"
)

const upExample = "  sudo mynetwork up\n" +
	"  mynetwork up --userspace --forward 127.0.0.1:2222=ms1:22\n" +
	"  sudo mynetwork up -i office -c /etc/mynetwork/office.json --log-format json --log-level warn"

func newUpCmd(opts *rootOptions) *cobra.Command {
	var (
		logs       logOptions
		cpuProfile string
		dopts      daemon.Options
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the node up and run it until interrupted",
		Long: "Creates the TUN interface (needs root), connects to the configured peers\n" +
			"and carries packets until SIGINT or SIGTERM, then removes everything it added.\n" +
			"SIGHUP re-reads the config file, as 'mynetwork reload' does.\n\n" +
			"With --userspace no root and no TUN are needed: a TCP/IP stack inside the\n" +
			"process holds the node's mesh addresses, reached through a SOCKS5 proxy\n" +
			"(default 127.0.0.1:1080, with a username and password: 'mynetwork socks5-url'),\n" +
			"port forwards, exposes and 'mynetwork nc'.",
		Example: upExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dopts.Userspace && (dopts.SOCKS5 != "" || dopts.SOCKS5Auth != "" || len(dopts.Forwards)+len(dopts.Exposes) > 0) {
				return errors.New("--socks5, --socks5-auth, --forward and --expose need --userspace")
			}
			log, err := logs.start(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if n, ok := daemonProcs(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)); ok {
				runtime.GOMAXPROCS(n)
				log.Debug("Go code runs on at most half the CPUs", "GOMAXPROCS", n)
			}
			dopts.ConfigPath, dopts.Interface, dopts.Log = opts.configPath(), opts.iface, log
			d, err := daemon.New(dopts)
			if err != nil {
				return err
			}
			daemon.WarnIfExposed(opts.configPath(), log)
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			defer reloadOnHUP(ctx, d, log)()
			return d.Run(ctx)
		},
	}
	logs.addFlags(cmd)
	cmd.Flags().BoolVar(&dopts.Userspace, "userspace", false, "run without root or TUN: an in-process TCP/IP stack, SOCKS5, forwards")
	cmd.Flags().StringVar(&dopts.SOCKS5, "socks5", "", "userspace: SOCKS5 listen address, or off (default 127.0.0.1:1080)")
	cmd.Flags().StringVar(&dopts.SOCKS5Auth, "socks5-auth", "", "userspace: password (the default: the config's, or made once and kept in <config>.socks5.json; see socks5-url) or none (loopback only)")
	cmd.Flags().StringArrayVar(&dopts.Forwards, "forward", nil, "userspace: [tcp:|udp:]LISTEN=HOST:PORT, e.g. 127.0.0.1:2222=ms1:22 (repeatable)")
	cmd.Flags().StringArrayVar(&dopts.Exposes, "expose", nil, "userspace: [tcp:|udp:]PORT=LOCAL:PORT, e.g. 22=127.0.0.1:22 (repeatable)")
	cmd.Flags().StringVar(&dopts.Metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics, a loopback IP:port (e.g. 127.0.0.1:9464), or off (default: the config's \"metrics\", else none)")
	cmd.Flags().StringVar(&dopts.ExitNode, "exit-node", "", "send all traffic through this peer (by name), or off (default: the config's exitNode.use)")
	cmd.Flags().BoolVar(&dopts.ExitNodeOffer, "exit-node-offer", false, "forward the peers' traffic to the internet, with source NAT (config: exitNode.offer, .clients)")
	cmd.Flags().BoolVar(&dopts.ExitNodeAllowLAN, "exit-node-allow-lan", false, "with an exit node, keep the local networks reachable directly (kernel mode)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the daemon's whole run to this file")
	cmd.Flags().MarkHidden("cpuprofile")
	return cmd
}

// daemonProcs says how many CPUs may run the daemon's Go code at once: half
// of what Go would use (at least one), unless GOMAXPROCS is set. The rest of
// a VPN's work is the kernel's (TCP, the TUN), done in system calls that Go
// does not count, and the applications whose traffic it carries need CPUs
// too. On the bench's 2 cores, with both daemons and iperf3 on them, one
// each instead of two: 1.66 instead of 1.86 CPU s per GB, ping 0.42 instead
// of 0.52 ms, idle RSS 30.9 instead of 31.9 MiB, throughput rows alike
// within the machine's noise (one stream 6.4-7.2 vs 4.5-6.7 Gbit/s in four
// runs each).
func daemonProcs(env string, current int) (int, bool) {
	if env != "" {
		return 0, false
	}
	return max(1, current/2), true
}
