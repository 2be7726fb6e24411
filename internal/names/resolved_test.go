package names

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fakeResolvectl records the commands and fails the one named fail.
func fakeResolvectl(calls *[]string, fail string) func(context.Context, ...string) error {
	return func(_ context.Context, args ...string) error {
		*calls = append(*calls, strings.Join(args, " "))
		if args[0] == fail {
			return errors.New("resolvectl " + fail + " failed")
		}
		return nil
	}
}

func TestResolved(t *testing.T) {
	const domains = "mynetwork.internal ~mynetwork ~64.100.in-addr.arpa ~0.0.0.0.4.7.5.6.e.6.9.7.d.6.d.f.ip6.arpa"
	for _, tc := range []struct {
		name, fail string
		want       []string
	}{
		{"registers", "", []string{"dns mn0 100.64.0.1", "domain mn0 " + domains, "default-route mn0 false"}},
		{"reverts a half registration", "domain", []string{"dns mn0 100.64.0.1", "domain mn0 " + domains, "revert mn0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			r := Resolved{Iface: "mn0", Server: netip.MustParseAddr("100.64.0.1"), Run: fakeResolvectl(&calls, tc.fail)}
			err := r.Register(context.Background())
			if (err != nil) != (tc.fail != "") {
				t.Errorf("Register: %v", err)
			}
			if !slices.Equal(calls, tc.want) {
				t.Errorf("commands:\n%q\nwant\n%q", calls, tc.want)
			}
		})
	}
}
