package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/control"
)

func newRouteCmd(opts *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "route",
		Aliases: []string{"r"},
		Short:   "Show, add or delete routes to networks behind peers",
		Example: "  mynetwork route\n  sudo mynetwork route add 192.168.10.0/24 pi --persist",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showRoutes(cmd, opts, false)
		},
	}
	var asJSON bool
	show := &cobra.Command{
		Use:     "show",
		Aliases: []string{"ls", "list"},
		Short:   "Show the route table: network → peer",
		Example: "  mynetwork route show --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showRoutes(cmd, opts, asJSON)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var persistAdd, persistDel bool
	add := &cobra.Command{
		Use:   "add <cidr> <peer name|peer ID>",
		Short: "Route a network to a peer now (and in the config with --persist)",
		Example: "  sudo mynetwork route add 192.168.10.0/24 pi\n" +
			"  sudo mynetwork route add fd00:10::/64 12D3KooW... --persist",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := opts.client().AddRoute(cmd.Context(), control.RouteRequest{Net: args[0], Peer: args[1], Persist: persistAdd})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s → @%s (%s)\n", r.Net, r.PeerName, r.PeerID)
			return nil
		},
	}
	add.Flags().BoolVar(&persistAdd, "persist", false, "also write the route into the config file")
	del := &cobra.Command{
		Use:     "del <cidr>",
		Aliases: []string{"delete", "rm"},
		Short:   "Remove a route now (and from the config with --persist)",
		Example: "  sudo mynetwork route del 192.168.10.0/24 --persist",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.client().DelRoute(cmd.Context(), control.RouteRequest{Net: args[0], Persist: persistDel}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s removed\n", args[0])
			return nil
		},
	}
	del.Flags().BoolVar(&persistDel, "persist", false, "also remove the route from the config file")
	cmd.AddCommand(show, add, del)
	return cmd
}

func showRoutes(cmd *cobra.Command, opts *rootOptions, asJSON bool) error {
	routes, err := opts.client().Routes(cmd.Context())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(out, routes)
	}
	tw := table(out)
	fmt.Fprintln(tw, "NETWORK\tPEER\tPEER ID\tSTATE")
	for _, r := range routes {
		state := "not connected"
		if r.Connected {
			state = "connected"
		}
		fmt.Fprintf(tw, "%s\t@%s\t%s\t%s\n", r.Net, r.PeerName, r.PeerID, state)
	}
	return tw.Flush()
}
