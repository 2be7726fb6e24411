package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/config"
)

func newInitCmd(opts *rootOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "init",
		Aliases: []string{"i"},
		Short:   "Create a config file with a new identity",
		Example: "  mynetwork init                 # writes mynetwork.json here\n" +
			"  mynetwork init -i office -c /etc/mynetwork/office.json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := opts.configPath()
			if _, err := os.Stat(path); err == nil && !force {
				return fmt.Errorf("%s already exists and holds this node's identity; use --force to replace it", path)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			c, err := config.Generate()
			if err != nil {
				return err
			}
			if err := c.Save(path); err != nil {
				return err
			}
			id, err := c.ID()
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			name, _ := json.Marshal(config.SuggestName(host))
			snippet := fmt.Sprintf(`{"name": %s, "id": "%s"}`, name, id)
			a := config.AddressesOf(id)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Wrote %s (mode 0600): it holds this node's private key.\n\n", path)
			fmt.Fprintf(out, "Add this node to the \"peers\" list in every other node's config:\n\n    %s\n\n", snippet)
			fmt.Fprintf(out, "This node's mesh addresses: %s and %s\n", a.IPv4, a.IPv6)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing config file (its identity is lost)")
	return cmd
}
