// Command mynetwork is the Mynetwork CLI: a peer-to-peer mesh VPN on libp2p.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/control"
)

// rootOptions are the global flags every command shares.
type rootOptions struct {
	config string
	iface  string
	socket string // the control socket of iface, set once -i is checked
}

// configPath is the -c path, or <interface>.json in the current folder.
func (o *rootOptions) configPath() string {
	if o.config != "" {
		return o.config
	}
	return o.iface + ".json"
}

func (o *rootOptions) client() *control.Client {
	return control.NewClient(o.iface, o.socket)
}

// checkInterface refuses a bad -i before any command uses it: it names
// files (the control socket, the default config) and a kernel interface.
func (o *rootOptions) checkInterface() error {
	sock, err := control.SocketPath(o.iface)
	if err != nil {
		return fmt.Errorf("-i/--interface: %w", err)
	}
	o.socket = sock
	return nil
}

func newRootCmd() *cobra.Command {
	opts := &rootOptions{}
	root := &cobra.Command{
		Use:           "mynetwork",
		Short:         "A peer-to-peer mesh VPN: your machines on one private network, wherever they are",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return opts.checkInterface()
		},
	}
	root.PersistentFlags().StringVarP(&opts.config, "config", "c", "", "config file (default <interface>.json)")
	root.PersistentFlags().StringVarP(&opts.iface, "interface", "i", "mynetwork", "interface name; also names the config file and the daemon")
	root.AddCommand(
		newInitCmd(opts),
		newUpCmd(opts),
		newStatusCmd(opts),
		newPeersCmd(opts),
		newRouteCmd(opts),
		newNcCmd(opts),
		newSOCKS5URLCmd(opts),
		newReloadCmd(opts),
		newPingCmd(opts),
		newMeshCmd(opts),
		newInviteCmd(opts),
		newJoinCmd(opts),
		newRevokeCmd(opts),
		newExitNodeCmd(opts),
		newVersionCmd(),
	)
	setVersion(root)
	root.SetHelpCommand(&cobra.Command{
		Use:     "help [command]",
		Aliases: []string{"?"},
		Short:   "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			target, _, err := root.Find(args)
			if err != nil || target == nil {
				return fmt.Errorf("unknown help topic %q", args)
			}
			return target.Help()
		},
	})
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mynetwork:", err)
		os.Exit(1)
	}
}
