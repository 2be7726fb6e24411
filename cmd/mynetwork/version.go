package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, the commit it was built from and the Go that built it",
		Example: "  mynetwork version\n  mynetwork --version\n  mynetwork version --json",
		Args:    cobra.NoArgs,
		// No daemon and no interface: skip the root's check of -i.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), info)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// setVersion gives root a --version flag that prints what 'version' does.
func setVersion(root *cobra.Command) {
	root.Version = buildinfo.Get().String()
	root.SetVersionTemplate("{{.Version}}\n")
}
