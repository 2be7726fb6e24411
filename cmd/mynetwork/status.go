package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mynetwork/mynetwork/internal/control"
)

func newStatusCmd(opts *rootOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "status",
		Aliases: []string{"s"},
		Short:   "Show this node, its VPN peers and its addresses",
		Example: "  mynetwork status\n  mynetwork status --json | jq '.peers[] | {name, path, why}'\n  mynetwork status -i office",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := opts.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			writeStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeStatus renders status as text.
func writeStatus(out io.Writer, st control.Status) {
	connected, idle := 0, 0
	for _, p := range st.Peers {
		if p.Connected {
			connected++
		} else if p.Idle {
			idle++
		}
	}
	fmt.Fprintf(out, "PeerID: %s\n", st.PeerID)
	if st.Version.Version != "" { // a daemon older than 'version' sends none
		fmt.Fprintf(out, "Version: %s\n", strings.TrimPrefix(st.Version.String(), "mynetwork "))
	}
	fmt.Fprintf(out, "Interface: %s (%s mode)\n", st.Interface, st.Mode)
	if st.SegmentationOffload {
		fmt.Fprintf(out, "MTU: %d, TCP segmentation offload\n", st.MTU)
	} else {
		fmt.Fprintf(out, "MTU: %d\n", st.MTU)
	}
	fmt.Fprintf(out, "Mesh addresses: %s, %s\n", st.IPv4, st.IPv6)
	fmt.Fprintf(out, "Swarm peers: %d\n", st.SwarmPeers)
	if st.IdleTimeoutSeconds > 0 {
		fmt.Fprintf(out, "Connections: on demand, each closed after %s without packets\n", shortDuration(time.Duration(st.IdleTimeoutSeconds)*time.Second))
	}
	if idle > 0 {
		fmt.Fprintf(out, "Connected VPN nodes: %d/%d, %d idle\n", connected, len(st.Peers), idle)
	} else {
		fmt.Fprintf(out, "Connected VPN nodes: %d/%d\n", connected, len(st.Peers))
	}
	writePeers(out, st.Peers)
	if st.Userspace != nil {
		writeUserspace(out, st.Userspace)
	}
	writeBootstrap(out, st.BootstrapPeers)
	writeMesh(out, st.Mesh)
	writeExitNode(out, st.ExitNode, false)
	if f := st.Forwarding; f != nil {
		fmt.Fprintf(out, "Forwarding to this host for peers: %d TCP, %d UDP open; %d refused at the bounds, %d dials failed, %d packets not carried\n",
			f.TCP, f.UDP, f.Refused, f.DialFailed, f.Dropped)
	}
	if len(st.Addresses) == 0 {
		// Listening on loopback only, say: peers must know an address.
		fmt.Fprintln(out, "Addresses: none that other machines can dial")
		return
	}
	fmt.Fprintln(out, "Addresses:")
	for _, a := range st.Addresses {
		fmt.Fprintf(out, "    %s\n", a)
	}
}

// writePeers lists the connected peers first, then the others with why.
func writePeers(out io.Writer, peers []control.PeerStatus) {
	for _, p := range peers {
		if p.Connected {
			path := p.Path
			if p.Path == "relay" {
				path = "relay via " + p.Relay
			}
			if p.Member {
				path += ", member"
			}
			fmt.Fprintf(out, "    @%s (%s) %s [%s]\n", p.Name, rtt(p.RTTMillis), p.Addr, path)
		}
	}
	var idle []string
	for _, p := range peers {
		switch {
		case p.Connected:
		case p.Idle:
			idle = append(idle, "@"+p.Name)
		default:
			fmt.Fprintf(out, "    @%s (%s) not connected: %s\n", p.Name, p.IPv4, whyLine(p.Why))
		}
	}
	writeIdle(out, idle)
}

// shortDuration is d as "10m" or "1h30m", not "10m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// writeIdle lists the idle peers (on demand: nothing needed them lately)
// by name, a few to a line: a node of hundreds of peers has mostly these.
func writeIdle(out io.Writer, names []string) {
	if len(names) == 0 {
		return
	}
	fmt.Fprintln(out, "    idle, connected when there is traffic for them:")
	line := "       "
	for _, n := range names {
		if len(line)+1+len(n) > 80 && line != "       " {
			fmt.Fprintln(out, line)
			line = "       "
		}
		line += " " + n
	}
	fmt.Fprintln(out, line)
}

func writeUserspace(out io.Writer, u *control.Userspace) {
	switch {
	case u.SOCKS5 == "off":
		fmt.Fprintf(out, "SOCKS5: off\n")
	case u.SOCKS5Credentials == "":
		fmt.Fprintf(out, "SOCKS5: %s, open to every local user (no authentication)\n", u.SOCKS5)
	default:
		fmt.Fprintf(out, "SOCKS5: %s, username and password in %s (mynetwork socks5-url)\n", u.SOCKS5, u.SOCKS5Credentials)
	}
	for _, f := range u.Forwards {
		fmt.Fprintf(out, "Forward: %s\n", f)
	}
	for _, e := range u.Exposes {
		fmt.Fprintf(out, "Expose: %s\n", e)
	}
}

// writeMesh says who the node is in its mesh, if it is in one.
func writeMesh(out io.Writer, m *control.MeshStatus) {
	if m == nil {
		return
	}
	role := "member"
	if m.Admin {
		role = "admin"
	}
	until := "no certificate"
	if !m.Certificate.IsZero() {
		until = "certificate until " + m.Certificate.Local().Format(time.DateOnly)
	}
	fmt.Fprintf(out, "Mesh: %s, %s, %s; %s, %s; trusts %s\n", m.Name, role, until,
		count(m.Members, "other member"), count(m.Revocations, "revocation"), strings.Join(shortFingerprints(m.Trust), ", "))
}

// count is "1 thing" or "N things".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// shortFingerprints are the first 16 hex digits of each fingerprint.
func shortFingerprints(fps []string) []string {
	out := make([]string, len(fps))
	for i, f := range fps {
		out[i] = f[:min(len(f), 16)]
	}
	return out
}

// writeBootstrap gives each DHT bootstrap peer a line: its name if it is
// a configured peer too, its ID, its state and what went wrong.
func writeBootstrap(out io.Writer, boot []control.BootstrapPeer) {
	if len(boot) == 0 {
		return
	}
	fmt.Fprintln(out, "DHT bootstrap peers:")
	for _, b := range boot {
		name := ""
		if b.Name != "" {
			name = "@" + b.Name + " "
		}
		why := ""
		if b.Error != "" {
			why = ": " + b.Error
		}
		fmt.Fprintf(out, "    %s%s %s%s\n", name, b.ID, b.State, why)
	}
}

// whyLine is why a peer is not connected, in one line: the node's last
// failed try, or that none has failed yet (it is still dialing, or waits
// for the peer to dial first).
func whyLine(why string) string {
	if why == "" {
		return "connecting (no try has failed yet)"
	}
	return strings.Join(strings.Fields(why), " ")
}
