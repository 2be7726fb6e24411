package hostnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// The forwarding settings, read and written as the sysctl files they are.
var forwardingFiles = []string{
	"/proc/sys/net/ipv4/ip_forward",
	"/proc/sys/net/ipv6/conf/all/forwarding",
}

func enableForwarding() (func() error, error) {
	var changed []string // files found at 0 and set to 1
	restore := func() error {
		var errs []error
		for _, f := range changed {
			errs = append(errs, writeSysctl(f, "0"))
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
		if err := writeSysctl(f, "1"); err != nil {
			return nil, errors.Join(err, restore())
		}
		changed = append(changed, f)
	}
	return restore, nil
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
