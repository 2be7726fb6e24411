package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/control"
)

func newExitNodeCmd(opts *rootOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "exit-node [NAME|off]",
		Short: "Send all traffic through a peer, or stop; without an argument, show the exit node",
		Long: "Asks the running daemon to send all of this machine's traffic through the peer\n" +
			"NAME (which must offer itself: 'up --exit-node-offer' there), or with 'off' to\n" +
			"stop and put the routing back exactly as it was. While the exit node cannot be\n" +
			"reached, traffic to the internet is dropped, never sent out the local link.",
		Example: "  sudo mynetwork exit-node home\n" +
			"  sudo mynetwork exit-node off\n" +
			"  mynetwork exit-node            # which, and is it up?",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st control.ExitNodeStatus
			if len(args) == 0 {
				s, err := opts.client().Status(cmd.Context())
				if err != nil {
					return err
				}
				if s.ExitNode != nil {
					st = *s.ExitNode
				}
			} else {
				var err error
				if st, err = opts.client().SetExitNode(cmd.Context(), control.ExitNodeRequest{Peer: args[0]}); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			writeExitNode(cmd.OutOrStdout(), &st, true)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeExitNode says which exit node is used and whether it is up, and
// whether this node offers itself as one; with always, "none" too.
func writeExitNode(out io.Writer, st *control.ExitNodeStatus, always bool) {
	switch {
	case st == nil || st.Use == "" && !st.Offer:
		if always {
			fmt.Fprintln(out, "Exit node: none")
		}
		return
	case st.Use != "" && st.Connected:
		fmt.Fprintf(out, "Exit node: %s, connected: all traffic goes through it\n", st.Use)
	case st.Use != "":
		fmt.Fprintf(out, "Exit node: %s, DOWN: traffic to the internet is dropped until it is back\n", st.Use)
	}
	if st.Offer {
		who := "every peer"
		if len(st.Clients) > 0 {
			who = strings.Join(st.Clients, ", ")
		}
		fmt.Fprintf(out, "Exit node offered to: %s\n", who)
	}
}
