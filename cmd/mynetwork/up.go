package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/daemon"
)

func newUpCmd(opts *rootOptions) *cobra.Command {
	var (
		verbose    bool
		cpuProfile string
		dopts      daemon.Options
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the node up and run it until interrupted",
		Long: "Creates the TUN interface (needs root), connects to the configured peers\n" +
			"and carries packets until SIGINT or SIGTERM, then removes everything it added.\n\n" +
			"With --userspace no root and no TUN are needed: a TCP/IP stack inside the\n" +
			"process holds the node's mesh addresses, reached through a SOCKS5 proxy\n" +
			"(default 127.0.0.1:1080), port forwards, exposes and 'mynetwork nc'.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			if !dopts.Userspace && (dopts.SOCKS5 != "" || len(dopts.Forwards)+len(dopts.Exposes) > 0) {
				return errors.New("--socks5, --forward and --expose need --userspace")
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
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
			return d.Run(ctx)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug details")
	cmd.Flags().BoolVar(&dopts.Userspace, "userspace", false, "run without root or TUN: an in-process TCP/IP stack, SOCKS5, forwards")
	cmd.Flags().StringVar(&dopts.SOCKS5, "socks5", "", "userspace: SOCKS5 listen address, or off (default 127.0.0.1:1080)")
	cmd.Flags().StringArrayVar(&dopts.Forwards, "forward", nil, "userspace: [tcp:|udp:]LISTEN=HOST:PORT, e.g. 127.0.0.1:2222=ms1:22 (repeatable)")
	cmd.Flags().StringArrayVar(&dopts.Exposes, "expose", nil, "userspace: [tcp:|udp:]PORT=LOCAL:PORT, e.g. 22=127.0.0.1:22 (repeatable)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the daemon's whole run to this file")
	cmd.Flags().MarkHidden("cpuprofile")
	return cmd
}
