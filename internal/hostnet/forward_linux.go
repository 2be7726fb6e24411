package hostnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The forwarding settings, read and written as the sysctl files they are.
var forwardingFiles = []string{
	"/proc/sys/net/ipv4/ip_forward",
	"/proc/sys/net/ipv6/conf/all/forwarding",
}

// acceptRAGlob are the IPv6 settings of the interfaces (and of those made
// later) for router advertisements.
const acceptRAGlob = "/proc/sys/net/ipv6/conf/*/accept_ra"

func enableForwarding() (func() error, error) {
	var changed []string // files found at 0 and set to 1
	var raKept []string  // accept_ra files found at 1 and set to 2
	restore := func() error {
		var errs []error
		for _, f := range changed {
			errs = append(errs, writeSysctl(f, "0"))
		}
		for _, f := range raKept {
			errs = append(errs, restoreAcceptRA(f))
		}
		return errors.Join(errs...)
	}
	for _, f := range forwardingFiles {
		on, err := sysctlOn(f)
		if err != nil {
			return nil, errors.Join(err, restore())
		}
		if on {
			continue
		}
		if f == forwardingFiles[1] {
			// Before IPv6 forwarding goes on: an interface whose
			// accept_ra is 1 would stop taking router advertisements,
			// and a host that learns its IPv6 default route from them
			// would lose it when the route expires. 2 takes them with
			// forwarding on.
			kept, err := keepAcceptingRA()
			raKept = kept
			if err != nil {
				return nil, errors.Join(err, restore())
			}
		}
		if err := writeSysctl(f, "1"); err != nil {
			return nil, errors.Join(err, restore())
		}
		changed = append(changed, f)
	}
	return restore, nil
}

// keepAcceptingRA sets every accept_ra that is 1 (all, default and each
// interface's) to 2, and returns the files it set.
func keepAcceptingRA() ([]string, error) {
	files, err := filepath.Glob(acceptRAGlob)
	if err != nil {
		return nil, err
	}
	var set []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // an interface that went away meanwhile
		}
		if string(bytes.TrimSpace(b)) != "1" {
			continue
		}
		if err := writeSysctl(f, "2"); err != nil {
			return set, err
		}
		set = append(set, f)
	}
	return set, nil
}

// restoreAcceptRA puts an accept_ra that keepAcceptingRA set back to 1,
// unless someone changed it since or its interface is gone.
func restoreAcceptRA(f string) error {
	b, err := os.ReadFile(f)
	if err != nil || string(bytes.TrimSpace(b)) != "2" {
		return nil
	}
	return writeSysctl(f, "1")
}

// sysctlOn reads a boolean sysctl: "0" or "1".
func sysctlOn(file string) (bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, fmt.Errorf("read forwarding setting: %w", err)
	}
	switch v := string(bytes.TrimSpace(b)); v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("read forwarding setting %s: %q is neither 0 nor 1", file, v)
	}
}

func writeSysctl(file, value string) error {
	if err := os.WriteFile(file, []byte(value+"\n"), 0); err != nil {
		return fmt.Errorf("set %s to %s (needs root): %w", file, value, err)
	}
	return nil
}
