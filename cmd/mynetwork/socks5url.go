package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/daemon"
)

func newSOCKS5URLCmd(opts *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "socks5-url",
		Short: "Print the SOCKS5 proxy's URL with its username and password (userspace mode)",
		Long: "Asks the daemon where its SOCKS5 proxy listens and which file holds its\n" +
			"username and password, reads that file (mode 0600: as its owner) and prints\n" +
			"socks5h://USER:PASSWORD@ADDR. The daemon logs the file, never the password.",
		Example: "  curl --proxy \"$(mynetwork socks5-url)\" http://pi/",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := opts.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			u, err := daemon.SOCKS5URL(st)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			return nil
		},
	}
}
