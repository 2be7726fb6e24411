package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newPeersCmd(opts *rootOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "peers",
		Short:   "List connected libp2p peers, VPN peers first",
		Example: "  mynetwork peers\n  mynetwork peers --json",
		Args:    cobra.NoArgs,
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
			fmt.Fprintln(tw, "VPN PEER\tPEER ID\tADDRESSES")
			others := 0
			for _, p := range peers {
				if p.VPN {
					fmt.Fprintf(tw, "@%s\t%s\t%s\n", p.Name, p.ID, strings.Join(p.Addrs, " "))
				} else {
					others++
				}
			}
			if others > 0 {
				fmt.Fprintf(tw, "\nOTHER SWARM PEERS (%d)\t\t\n", others)
				for _, p := range peers {
					if !p.VPN {
						fmt.Fprintf(tw, "-\t%s\t%s\n", p.ID, strings.Join(p.Addrs, " "))
					}
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
