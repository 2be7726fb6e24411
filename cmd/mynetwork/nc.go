package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
)

func newNcCmd(opts *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "nc <host> <port>",
		Short: "Connect stdin/stdout to a TCP port on the mesh (for ssh ProxyCommand)",
		Long: "Opens a TCP connection to host:port through the local daemon, in either mode,\n" +
			"and connects it to stdin and stdout. host is a peer name (ms1 or ms1.mynetwork)\n" +
			"or a mesh IP.",
		Example: "  ssh -o ProxyCommand='mynetwork nc %h %p' user@ms1\n" +
			"  echo hello | mynetwork nc ms1.mynetwork 7",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			port, err := strconv.ParseUint(args[1], 10, 16)
			if err != nil || port == 0 {
				return fmt.Errorf("port %q is not a number from 1 to 65535", args[1])
			}
			conn, err := opts.client().Dial(cmd.Context(), args[0], uint16(port))
			if err != nil {
				return err
			}
			defer conn.Close()
			go func() {
				io.Copy(conn, cmd.InOrStdin())
				if cw, ok := conn.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}()
			_, err = io.Copy(cmd.OutOrStdout(), conn)
			return err
		},
	}
}
