package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/daemon"
)

func newReloadCmd(opts *rootOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Re-read the config file: peers and routes change, tunnels stay up",
		Long: "Asks the running daemon to re-read its config file (as SIGHUP to 'mynetwork up'\n" +
			"does). Peers added, removed or renamed and routes take effect; tunnels to the\n" +
			"peers kept carry on. A config that does not load is refused with the errors\n" +
			"'up' gives, and the running one stays. Routes added without --persist go.\n" +
			"Listen addresses, MTU, relays, bootstrap peers, mDNS, reachability and the\n" +
			"userspace settings apply at the next start; reload names those that changed.",
		Example: "  mynetwork reload -i ms0\n" +
			"  sudo systemctl reload mynetwork@ms0   # the same, through systemd (SIGHUP)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := opts.client().Reload(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			printReload(cmd, res)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printReload says what a reload changed, a line for each kind of change.
func printReload(cmd *cobra.Command, res control.ReloadResult) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Reloaded: %d peers.\n", res.Peers)
	for _, l := range []struct {
		what  string
		names []string
	}{{"Added", res.Added}, {"Removed", res.Removed}, {"Renamed", res.Renamed}, {"Changed, applied at the next start", res.Restart}} {
		if len(l.names) > 0 {
			fmt.Fprintf(out, "%s: %s\n", l.what, strings.Join(l.names, ", "))
		}
	}
}

// reloadOnHUP reloads d's config on each SIGHUP; the function it returns
// stops listening and waits for a reload in progress.
func reloadOnHUP(ctx context.Context, d *daemon.Daemon, log *slog.Logger) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-hup:
				log.Info("SIGHUP: reloading the config")
				if _, err := d.Reload(ctx); err != nil {
					log.Error("reload refused; the running config stays", "err", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(quit)
		<-done
	}
}
