//go:build !linux

package conns

// tuning is a socket's delivery rate and unsent limit, which only Linux
// sockets have here: elsewhere a connection is left as the system made it.
type tuning struct{}

func newTuning(any) *tuning { return nil }

func (*tuning) deliveryRate() (uint64, bool) { return 0, false }

func (*tuning) setUnsent(int64) {}
