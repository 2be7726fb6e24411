package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newPeersCmd(opts *rootOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List connected libp2p peers, VPN peers first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			peers, err := opts.client().Peers(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, peers)
			}
			if len(peers) == 0 {
				fmt.Fprintln(out, "No connected peers.")
				return nil
			}
			tw := table(out)
			fmt.Fprintln(tw, "NAME\tPEER ID\tADDRESSES")
			for _, p := range peers {
				name := "-"
				if p.VPN {
					name = "@" + p.Name
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", name, p.ID, strings.Join(p.Addrs, " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
