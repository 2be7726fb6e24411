package names

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Resolved tells systemd-resolved to send the mesh's names on an interface
// to the mesh's server (split DNS), through resolvectl: it sets the same
// link properties as resolve1's SetLinkDNS, SetLinkDomains and
// SetLinkDefaultRoute over D-Bus, without a D-Bus library.
type Resolved struct {
	Iface  string
	Server netip.Addr
	// All sends every query to Server, not the mesh's domains alone:
	// while an exit node carries all traffic, so that no query leaves
	// beside the tunnel (the server forwards them to the exit node).
	All bool
	// Run runs resolvectl with args; nil runs the one on PATH.
	Run func(ctx context.Context, args ...string) error
}

// ResolvedRunning reports whether systemd-resolved runs here: its runtime
// folder exists and resolvectl is there to talk to it.
func ResolvedRunning() bool {
	if _, err := os.Stat("/run/systemd/resolve"); err != nil {
		return false
	}
	_, err := exec.LookPath("resolvectl")
	return err == nil
}

// Domains are what the link is given: Domain as a search domain, so that
// `ssh pi` finds pi.mynetwork.internal, and the other zones as routing
// domains only (~), so that their names are asked here and nowhere else.
func Domains() []string {
	ds := []string{Domain, "~" + ShortDomain}
	for _, z := range ReverseZones {
		ds = append(ds, "~"+z)
	}
	return ds
}

// Register points the link at the server for Domains. The link is also
// taken out of the default route: the server answers NXDOMAIN for every
// other name, and would hide the internet's names from the host.
func (r Resolved) Register(ctx context.Context) error {
	domains := Domains()
	if r.All {
		domains = append(domains, "~.")
	}
	for _, args := range [][]string{
		{"dns", r.Iface, r.Server.String()},
		append([]string{"domain", r.Iface}, domains...),
		{"default-route", r.Iface, strconv.FormatBool(r.All)},
	} {
		if err := r.run(ctx, args...); err != nil {
			r.Revert(ctx)
			return err
		}
	}
	return nil
}

// Revert takes back what Register set on the link.
func (r Resolved) Revert(ctx context.Context) error {
	return r.run(ctx, "revert", r.Iface)
}

func (r Resolved) run(ctx context.Context, args ...string) error {
	if r.Run != nil {
		return r.Run(ctx, args...)
	}
	out, err := exec.CommandContext(ctx, "resolvectl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("resolvectl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
