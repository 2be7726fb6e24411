package socks

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ParseForward parses a --forward flag value: "127.0.0.1:2222=ms1:22",
// with an optional "tcp:" or "udp:" prefix ("udp:127.0.0.1:5353=ms1:53").
// The listen address needs a host: 127.0.0.1 for this machine only,
// 0.0.0.0 for every interface. Errors name the flag value and what is wrong.
func ParseForward(s string) (Forward, error) {
	bad := func(format string, a ...any) (Forward, error) {
		return Forward{}, fmt.Errorf("--forward %q: %s", s, fmt.Sprintf(format, a...))
	}
	network, rest := cutNetwork(s)
	listen, target, ok := strings.Cut(rest, "=")
	if !ok {
		return bad("want [tcp:|udp:]LISTEN=HOST:PORT")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		if p, ok := protocolPrefix(listen); ok {
			return bad("unknown protocol %q, want tcp or udp", p)
		}
		return bad("listen address %q: want HOST:PORT", listen)
	}
	if host == "" {
		return bad("listen address %q: missing host (127.0.0.1%s for this machine only, 0.0.0.0%[2]s for every interface)", listen, listen)
	}
	if _, err := parsePort(port); err != nil {
		return bad("listen port %q: %v", port, err)
	}
	if msg := checkTarget(target); msg != "" {
		return bad("%s", msg)
	}
	return Forward{Network: network, Listen: listen, Target: target}, nil
}

// ParseExpose parses an --expose flag value: "22=127.0.0.1:22", with an
// optional "tcp:" or "udp:" prefix ("udp:53=127.0.0.1:53"). Errors name the
// flag value and what is wrong.
func ParseExpose(s string) (Expose, error) {
	bad := func(format string, a ...any) (Expose, error) {
		return Expose{}, fmt.Errorf("--expose %q: %s", s, fmt.Sprintf(format, a...))
	}
	network, rest := cutNetwork(s)
	portStr, target, ok := strings.Cut(rest, "=")
	if !ok {
		return bad("want [tcp:|udp:]PORT=HOST:PORT")
	}
	port, err := parsePort(portStr)
	if err != nil {
		if p, ok := protocolPrefix(portStr); ok {
			return bad("unknown protocol %q, want tcp or udp", p)
		}
		return bad("port %q: %v", portStr, err)
	}
	if msg := checkTarget(target); msg != "" {
		return bad("%s", msg)
	}
	return Expose{Network: network, Port: port, Target: target}, nil
}

// cutNetwork removes a "tcp:" or "udp:" prefix; without one it is tcp.
func cutNetwork(s string) (network, rest string) {
	for _, n := range []string{"tcp", "udp"} {
		if r, ok := strings.CutPrefix(s, n+":"); ok {
			return n, r
		}
	}
	return "tcp", s
}

// protocolPrefix finds a would-be protocol such as "sctp" in "sctp:…".
func protocolPrefix(s string) (string, bool) {
	p, _, ok := strings.Cut(s, ":")
	if !ok || p == "" {
		return "", false
	}
	for _, r := range p {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return "", false
		}
	}
	return p, true
}

// checkTarget checks a HOST:PORT target; it returns what is wrong, or "".
func checkTarget(target string) string {
	host, port, err := net.SplitHostPort(target)
	switch {
	case err != nil:
		return fmt.Sprintf("target %q: want HOST:PORT", target)
	case host == "":
		return fmt.Sprintf("target %q: missing host", target)
	}
	if _, err := parsePort(port); err != nil {
		return fmt.Sprintf("target port %q: %v", port, err)
	}
	return ""
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want a number from 1 to 65535")
	}
	return uint16(n), nil
}
