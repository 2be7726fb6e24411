package p2p

import (
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestLivenessOneSided: an idle connected pair is kept alive by about one
// side's pings, not both sides' (connector.heardFrom): of the liveness
// rounds both connectors run, at most ~half send a ping.
func TestLivenessOneSided(t *testing.T) {
	interval := pingInterval
	t.Cleanup(func() { pingInterval = interval }) // after the nodes close
	pingInterval = 150 * time.Millisecond         // above pingWait's floor of 100 ms
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			a, b := pair(t, listen)
			p2ptest.Eventually(t, "connection", func() bool {
				return a.State(b.host.ID()).Connected && b.State(a.host.ID()).Connected
			})
			count := func() (rounds, pings uint64) {
				return a.liveRounds.Load() + b.liveRounds.Load(), a.livePings.Load() + b.livePings.Load()
			}
			r0, p0 := count()
			p2ptest.Eventually(t, "40 liveness rounds", func() bool { r, _ := count(); return r >= r0+40 })
			r1, p1 := count()
			rounds, pings := r1-r0, p1-p0
			t.Logf("%d of %d liveness rounds sent a ping", pings, rounds)
			if pings*10 > rounds*7 {
				t.Errorf("%d of %d liveness rounds sent a ping; one side's pings should do for both", pings, rounds)
			}
			if !a.State(b.host.ID()).Connected || !b.State(a.host.ID()).Connected || a.State(b.host.ID()).RTT <= 0 {
				t.Errorf("the pair is not connected with a round trip measured: %+v, %+v", a.State(b.host.ID()), b.State(a.host.ID()))
			}
		})
	}
}
