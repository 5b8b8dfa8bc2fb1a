package nft

import (
	"os"
	"testing"
)

// skipBug skips a test that shows a known bug, so that the suite stays
// green until it is fixed. OWNERWALL_TEST_BUGS=1 runs it anyway.
func skipBug(t *testing.T, bug string) {
	t.Helper()
	if os.Getenv("OWNERWALL_TEST_BUGS") != "1" {
		t.Skip("BUG: " + bug)
	}
}
