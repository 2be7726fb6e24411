package p2p

import (
	"testing"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end, p2p_test's (gate_test.go,
// soak_test.go) too: both packages build into one test binary, which can
// have only one TestMain. Once every node is closed, none of its
// goroutines may be left: connectors, the DHT's join, mDNS, the
// transport's, libp2p's, kad-dht's and quic-go's; none needs ignoring.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
