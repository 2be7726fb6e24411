package hostnet

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (r ExitRoutes) install() (func() error, error) {
	link, err := netlink.LinkByName(r.Iface)
	if err != nil {
		return nil, fmt.Errorf("exit routes through %s: %w", r.Iface, err)
	}
	var undo undoList
	for _, rt := range r.routes(link.Attrs().Index) {
		if err := netlink.RouteAdd(rt); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("the table has a default route already (is another program using table %d? choose another): %w", r.Table, err)
			}
			return nil, errors.Join(fmt.Errorf("add route %s dev %s table %d: %w", rt.Dst, r.Iface, r.Table, err), undo.run())
		}
		undo.add(func() error {
			return gone(netlink.RouteDel(rt), "delete route %s dev %s table %d", rt.Dst, r.Iface, r.Table)
		})
	}
	for _, rule := range r.rules() {
		if err := addRule(rule); err != nil {
			return nil, errors.Join(fmt.Errorf("add %s: %w", describe(rule), err), undo.run())
		}
		undo.add(func() error { return gone(netlink.RuleDel(rule), "delete %s", describe(rule)) })
	}
	if len(r.Ports) > 0 {
		if err := checkPortRules(); err != nil {
			return nil, errors.Join(err, undo.run())
		}
	}
	return undo.run, nil
}

// checkPortRules makes sure the kernel kept the listen-port rules'
// selectors. One older than 4.17 ignores them, and the rules would then
// send every packet to the main table, past the exit, without a word.
func checkPortRules() error {
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := netlink.RuleListFiltered(family, &netlink.Rule{Priority: prioPorts}, netlink.RT_FILTER_PRIORITY)
		if err != nil {
			return fmt.Errorf("read back the policy rules: %w", err)
		}
		for _, rule := range rules {
			if rule.IPProto == 0 || rule.Sport == nil {
				return fmt.Errorf("the kernel dropped the ipproto and sport of the rules at priority %d: listen ports need Linux 4.17 or newer", prioPorts)
			}
		}
	}
	return nil
}

// routes are the exit table's default routes, IPv4 and IPv6, through the
// interface.
func (r ExitRoutes) routes(index int) []*netlink.Route {
	return []*netlink.Route{
		{LinkIndex: index, Table: r.Table, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}},
		{LinkIndex: index, Table: r.Table, Protocol: unix.RTPROT_STATIC,
			Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}},
	}
}

// rules are the policy rules of both families, in the order they are
// added: those that keep packets to the main table come in before the one
// that sends everything else to the exit table.
func (r ExitRoutes) rules() []*netlink.Rule {
	var rules []*netlink.Rule
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		mark := newRule(family, prioMark, tableMain)
		mark.Mark = r.Mark
		rules = append(rules, mark)
		for _, p := range r.Ports {
			port := newRule(family, prioPorts, tableMain)
			port.IPProto = unix.IPPROTO_UDP
			if p.Proto == "tcp" {
				port.IPProto = unix.IPPROTO_TCP
			}
			port.Sport = netlink.NewRulePortRange(p.Port, p.Port)
			rules = append(rules, port)
		}
		if r.AllowLAN {
			lan := newRule(family, prioLAN, tableMain)
			lan.SuppressPrefixlen = 0
			rules = append(rules, lan)
		}
	}
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		rules = append(rules, newRule(family, prioTable, r.Table))
	}
	return rules
}

func newRule(family, priority, table int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family, r.Priority, r.Table = family, priority, table
	return r
}

// addRule adds a rule, replacing an identical one: the kernel refuses a
// duplicate, and one can only be left by a run that did not stop cleanly.
func addRule(rule *netlink.Rule) error {
	err := netlink.RuleAdd(rule)
	if errors.Is(err, unix.EEXIST) {
		if err = netlink.RuleDel(rule); err == nil {
			err = netlink.RuleAdd(rule)
		}
	}
	return err
}

// describe names a rule as `ip rule` would show it.
func describe(r *netlink.Rule) string {
	s := fmt.Sprintf("ip rule %d:", r.Priority)
	if r.Family == unix.AF_INET6 {
		s = fmt.Sprintf("ip -6 rule %d:", r.Priority)
	}
	switch {
	case r.Mark != 0:
		s += fmt.Sprintf(" fwmark %#x", r.Mark)
	case r.Sport != nil:
		proto := "udp"
		if r.IPProto == unix.IPPROTO_TCP {
			proto = "tcp"
		}
		s += fmt.Sprintf(" ipproto %s sport %d", proto, r.Sport.Start)
	}
	if r.Table == tableMain {
		s += " lookup main"
	} else {
		s += fmt.Sprintf(" lookup %d", r.Table)
	}
	if r.SuppressPrefixlen >= 0 {
		s += fmt.Sprintf(" suppress_prefixlength %d", r.SuppressPrefixlen)
	}
	return s
}

// gone wraps a delete's error, but none for what is gone already (the
// kernel deletes an interface's routes with it, an administrator may have
// deleted a table): that is what undo wants.
func gone(err error, format string, args ...any) error {
	if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// undoList undoes changes in the reverse order they were made.
type undoList []func() error

func (u *undoList) add(f func() error) { *u = append(*u, f) }

func (u *undoList) run() error {
	var errs []error
	for i := len(*u) - 1; i >= 0; i-- {
		errs = append(errs, (*u)[i]())
	}
	*u = nil
	return errors.Join(errs...)
}
