package main

import (
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/daemon"
)

func newUpCmd(opts *rootOptions) *cobra.Command {
	var verbose bool
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the node up and run it until interrupted",
		Long: "Creates the TUN interface (needs root), connects to the configured peers\n" +
			"and carries packets until SIGINT or SIGTERM, then removes everything it added.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			d, err := daemon.New(daemon.Options{ConfigPath: opts.configPath(), Interface: opts.iface, Log: log})
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
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the daemon's whole run to this file")
	cmd.Flags().MarkHidden("cpuprofile")
	return cmd
}
