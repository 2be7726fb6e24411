package engine

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// engine starts two pump loops per Run, and the fuzz rig and the
// allocation test start engines without a check of their own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
