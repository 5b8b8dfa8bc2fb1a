package policy

import (
	"testing"
)

// fixedBug fails the test: the behaviour it checks was a bug, since
// fixed; seeing it again is a regression.
func fixedBug(t *testing.T, bug string) {
	t.Helper()
	t.Errorf("a fixed bug is back: %s", bug)
}
