package pipe

import (
	"testing"

	"go.uber.org/goleak"
)

// All tests share one leak check at the end: Join's copying goroutines must
// end once either side has closed or gone idle.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
