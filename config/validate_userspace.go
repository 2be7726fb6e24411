package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// userspace checks the section of 'up --userspace'. It comes after the
// peers, whose names its forwards may use.
func (v *validator) userspace(u *Userspace) {
	listen := v.socks5Listen(u.SOCKS5)
	if (u.SOCKS5Username == "") != (u.SOCKS5Password == "") {
		v.add("userspace.socks5Password", "socks5Username and socks5Password must be set together")
	}
	v.socks5Auth(u, listen)
	for i, f := range u.Forwards {
		v.forward(fmt.Sprintf("userspace.forwards[%d]", i), f)
	}
	for i, e := range u.Exposes {
		v.expose(fmt.Sprintf("userspace.exposes[%d]", i), e)
	}
}

// socks5Listen checks the proxy's address and returns where it listens,
// DefaultSOCKS5 when absent or off, and an invalid address when bad.
func (v *validator) socks5Listen(s string) netip.AddrPort {
	if s == "" || s == "off" {
		return netip.MustParseAddrPort(DefaultSOCKS5)
	}
	listen, err := netip.ParseAddrPort(s)
	if err != nil {
		v.add("userspace.socks5", "%q is not an IP:port (or \"off\")", s)
	}
	return listen
}

func (v *validator) socks5Auth(u *Userspace, listen netip.AddrPort) {
	switch u.SOCKS5Auth {
	case "", SOCKS5AuthPassword:
	case SOCKS5AuthNone:
		if u.SOCKS5Username != "" {
			v.add("userspace.socks5Auth", "\"none\" but socks5Username is set: leave out one or the other")
		}
		// A bad address is reported once, at userspace.socks5.
		if u.SOCKS5 != "off" && listen.IsValid() {
			if err := CheckOpenSOCKS5(listen); err != nil {
				v.add("userspace.socks5Auth", "\"none\": %v", err)
			}
		}
	default:
		v.add("userspace.socks5Auth", "%q is not \"password\" or \"none\"", u.SOCKS5Auth)
	}
}

// forward checks the forward whose path is at. Its destination is a
// peer's name, with or without .mynetwork, or any IP: a mesh address or
// one in a routed network.
func (v *validator) forward(at string, f Forward) {
	v.proto(at, f.Proto)
	if _, err := netip.ParseAddrPort(f.Listen); err != nil {
		v.add(at+".listen", "%q is not a local IP:port", f.Listen)
	}
	host, port, err := net.SplitHostPort(f.To)
	if err != nil || !validPort(port) {
		v.add(at+".to", "%q is not HOST:PORT (a peer name or mesh IP, and a port)", f.To)
		return
	}
	if label, ok := HostLabel(host); ok {
		if _, known := v.names[label]; known || v.members && ValidName(label) {
			return // a member's name is known only at run time
		}
	}
	if _, err := netip.ParseAddr(host); err != nil {
		v.add(at+".to", "%q names no configured peer", host)
	}
}

func (v *validator) expose(at string, e Expose) {
	v.proto(at, e.Proto)
	if e.Port == 0 {
		v.add(at+".port", "missing: the port on this node's mesh address (1-65535)")
	}
	if _, port, err := net.SplitHostPort(e.To); err != nil || !validPort(port) {
		v.add(at+".to", "%q is not a local HOST:PORT", e.To)
	}
}

// CheckOpenSOCKS5 refuses a SOCKS5 proxy without authentication on an
// address that is not loopback: whoever reached it would reach the mesh as
// this node.
func CheckOpenSOCKS5(listen netip.AddrPort) error {
	if listen.Addr().IsLoopback() {
		return nil
	}
	return fmt.Errorf("a SOCKS5 proxy on %s, which is not a loopback address, needs a username and password, "+
		"or anyone who reaches it reaches the mesh as this node", listen)
}

func (v *validator) proto(at, proto string) {
	if proto != "" && proto != "tcp" && proto != "udp" {
		v.add(at+".proto", "%q is not \"tcp\" or \"udp\"", proto)
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}
