package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/member"
	"github.com/mynetwork/mynetwork/internal/membership"
)

func newMeshCmd(opts *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "Make this node the first admin of a mesh that grows by invitation",
		Example: "  mynetwork mesh init --name home   # then 'mynetwork up', then 'mynetwork invite NAME'\n" +
			"  mynetwork mesh init -i office -c /etc/mynetwork/office.json",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newMeshInitCmd(opts))
	return cmd
}

func newMeshInitCmd(opts *rootOptions) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a mesh key here and sign this node's own certificate",
		Long: "Creates a mesh signing key (Ed25519) in a file beside the config (mode 0600),\n" +
			"and a \"mesh\" section in the config: this node's name, the key it trusts and\n" +
			"its own certificate. The node is then an admin: 'mynetwork invite' on it\n" +
			"admits new machines. Run it before 'up' (or restart the node after).",
		Example: "  mynetwork mesh init --name home\n" +
			"  mynetwork mesh init -i office -c /etc/mynetwork/office.json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return meshInit(cmd, opts.configPath(), name)
		},
	}
	host, _ := os.Hostname()
	cmd.Flags().StringVar(&name, "name", config.SuggestName(host), "this node's name in the mesh")
	return cmd
}

// meshInit writes the mesh key, then the config; if the config cannot be
// written, the key goes again.
func meshInit(cmd *cobra.Command, path, name string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if cfg.Mesh != nil {
		return fmt.Errorf("%s already has a mesh section (this node is %q in it): one mesh per node", path, cfg.Mesh.Name)
	}
	if !config.ValidName(name) {
		return fmt.Errorf("--name %q is not a valid name: use letters, digits and inner dashes, at most 63", name)
	}
	keyPath := strings.TrimSuffix(path, ".json") + ".meshkey"
	if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s exists: a mesh key is there already; move it away to make a new mesh", keyPath)
	}
	key, err := member.GenerateKey()
	if err != nil {
		return err
	}
	raw, err := member.MarshalKey(key)
	if err != nil {
		return err
	}
	self, err := cfg.ID()
	if err != nil {
		return err
	}
	_, cert, err := member.Issue(key, self, name, nil, time.Now(), member.DefaultValidity)
	if err != nil {
		return err
	}
	pub, err := config.MeshPublicKey(key.GetPublic())
	if err != nil {
		return err
	}
	cfg.Mesh = &config.Mesh{Name: name, Trust: []string{pub}, SigningKey: filepath.Base(keyPath),
		Certificate: base64.StdEncoding.EncodeToString(cert)}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := config.WriteFileAtomic(keyPath, raw, 0o600); err != nil {
		return err
	}
	if err := cfg.Save(path); err != nil {
		os.Remove(keyPath)
		return err
	}
	fp, _ := member.FingerprintOf(key.GetPublic())
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Mesh key %s written to %s (mode 0600): whoever holds it admits members.\n", fp, keyPath)
	fmt.Fprintf(out, "This node is %q in the mesh. Start it ('mynetwork up'), then invite: mynetwork invite NAME\n", name)
	return nil
}

func newInviteCmd(opts *rootOptions) *cobra.Command {
	var ttl time.Duration
	var routes []string
	cmd := &cobra.Command{
		Use:   "invite NAME",
		Short: "Print a one-use token that lets a new machine join the mesh as NAME",
		Long: "Asks this admin node's daemon for an invitation: a one-line token holding the\n" +
			"node's peer ID and addresses and a secret, good for one 'mynetwork join' until\n" +
			"it expires. The token alone goes to stdout; keep it as secret as a password.",
		Example: "  mynetwork invite pi\n" +
			"  mynetwork invite nas --ttl 1h --route 192.168.1.0/24",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := opts.client().Invite(cmd.Context(), control.InviteRequest{Name: args[0], TTL: ttl, Routes: routes})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), inv.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "\nOne use, until %s. On the new machine: mynetwork join TOKEN\n", inv.Expires.Local().Format(time.RFC1123))
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", membership.DefaultTTL, "how long the invitation stays open")
	cmd.Flags().StringArrayVar(&routes, "route", nil, "a network (CIDR) the new member may serve; repeatable")
	return cmd
}

func newJoinCmd(opts *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "join TOKEN",
		Short: "Join a mesh with a token from 'mynetwork invite'",
		Long: "Connects to the inviter over libp2p, proves the token's secret and receives\n" +
			"this node's certificate and the members the inviter knows; writes them to the\n" +
			"config (created as 'init' does if absent) and a member file beside it, both\n" +
			"mode 0600. Then 'mynetwork up': every member reaches this node by name and\n" +
			"address. A join that fails changes nothing.",
		Example: "  mynetwork join mninv1...\n" +
			"  sudo mynetwork join -i ms0 -c /etc/mynetwork/ms0.json mninv1...",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return join(cmd, opts.configPath(), args[0])
		},
	}
	return cmd
}

// join uses a token; nothing is written unless the inviter admitted the
// node, and the config last.
func join(cmd *cobra.Command, path, token string) error {
	inv, err := member.ParseInvitation(token)
	if err != nil {
		return err
	}
	var cfg *config.Config
	if fileExists(path) {
		cfg, err = config.Load(path)
	} else {
		cfg, err = config.Generate()
	}
	if err != nil {
		return err
	}
	if cfg.Mesh != nil {
		return fmt.Errorf("%s already has a mesh section (this node is %q in it): one mesh per node", path, cfg.Mesh.Name)
	}
	key, err := cfg.PrivKey()
	if err != nil {
		return err
	}
	j, err := membership.Join(cmd.Context(), key, inv, config.MemberFile(path))
	if err != nil {
		return err
	}
	pub, err := config.MeshPublicKey(j.Key)
	if err != nil {
		return err
	}
	cfg.Mesh = &config.Mesh{Name: j.Cert.Name, Trust: []string{pub}, Certificate: base64.StdEncoding.EncodeToString(j.Raw)}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s with the mesh section: %w", path, err)
	}
	if err := j.Store.Save(); err != nil {
		return err
	}
	if err := cfg.Save(path); err != nil {
		os.Remove(config.MemberFile(path))
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Joined mesh %s as %s (%s, %s).\nStart the node ('mynetwork up', or restart it if it runs): every member reaches it by name and address.\n",
		inv.Key, j.Cert.Name, j.Cert.IPv4, j.Cert.IPv6)
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func newRevokeCmd(opts *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME|PEER-ID",
		Short: "Withdraw a member's certificate; every member drops it on hearing",
		Long: "Asks this admin node's daemon to sign a revocation of the member's certificate\n" +
			"(and every earlier one). It spreads to the members as certificates do; each\n" +
			"drops the member's tunnels and refuses it from then on. Revocations never expire.",
		Example: "  mynetwork revoke pi\n" +
			"  mynetwork revoke 12D3KooW...",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := opts.client().Revoke(cmd.Context(), control.RevokeRequest{Member: args[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked %s (%s)\n", r.Name, r.PeerID)
			return nil
		},
	}
}
