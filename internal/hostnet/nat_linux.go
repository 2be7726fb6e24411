package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func masquerade(iface string, src4, src6 netip.Prefix) (func() error, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName(iface)}
	// One transaction: adding before deleting makes the delete succeed
	// whether or not an old table is there, and nothing is half-installed.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	nat := c.AddChain(&nftables.Chain{
		Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	for _, src := range []netip.Prefix{src4, src6} {
		if src.IsValid() {
			c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: masqueradeFrom(iface, src)})
		}
	}
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{
		Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: acceptFrom(iface)})
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: acceptEstablishedTo(iface)})
	if err := c.Flush(); err != nil {
		hint := ""
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) {
			hint = " (NAT in the inet family needs Linux 5.2 or newer)"
		}
		return nil, fmt.Errorf("install nftables table inet %s%s: %w", t.Name, hint, err)
	}
	return func() error {
		c.DelTable(t)
		return gone(c.Flush(), "delete nftables table inet %s", t.Name)
	}, nil
}

// masqueradeFrom: "meta nfproto ipvN ip[6] saddr src oifname != iface masquerade".
func masqueradeFrom(iface string, src netip.Prefix) []expr.Any {
	proto, offset := byte(unix.NFPROTO_IPV4), uint32(12) // the IPv4 header's source address
	if src.Addr().Is6() {
		proto, offset = unix.NFPROTO_IPV6, 8
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
	if src.Bits() > 0 {
		n := uint32(src.Addr().BitLen() / 8)
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n,
				Mask: net.CIDRMask(src.Bits(), int(n*8)), Xor: make([]byte, n)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: src.Addr().AsSlice()},
		)
	}
	return append(e,
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(iface)},
		&expr.Masq{},
	)
}

// acceptFrom: "iifname iface accept".
func acceptFrom(iface string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(iface)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// acceptEstablishedTo: "oifname iface ct state established,related accept".
func acceptEstablishedTo(iface string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(iface)},
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// ifname is an interface name as the kernel compares it: IFNAMSIZ bytes,
// NUL padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}
