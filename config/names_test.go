package config

import (
	"fmt"
	"testing"
)

// TestForwardTargetNames: a forward reaches a peer by every name the
// node answers at run time (NAME, NAME.mynetwork, NAME.mynetwork.internal,
// any case, a final dot), and not by a name under another domain.
func TestForwardTargetNames(t *testing.T) {
	key, _ := testKey(t, "self")
	_, p1 := testKey(t, "ms1")
	doc := func(to string) []byte {
		return fmt.Appendf(nil, `{"privateKey":%q,"peers":[{"name":"ms1","id":%q}],"userspace":{"forwards":[{"listen":"127.0.0.1:2222","to":%q}]}}`, key, p1, to)
	}
	for _, to := range []string{"ms1:22", "ms1.mynetwork:22", "ms1.mynetwork.internal:22", "MS1.Mynetwork.Internal.:22"} {
		if _, err := Parse(doc(to)); err != nil {
			t.Errorf("%s: %v", to, err)
		}
	}
	if _, err := Parse(doc("ms1.example.com:22")); err == nil {
		t.Error("ms1.example.com accepted as a forward target")
	}
}
