package nft

import (
	"strings"
	"testing"
)

// TestNormalizeSortsElements: two listings of the same table, whose hash
// map the kernel dumped in different orders and nft wrapped differently,
// normalize the same; a changed element does not.
func TestNormalizeSortsElements(t *testing.T) {
	a := `table inet ownerwall {
	counter rule_1 {
		packets 12 bytes 720
	}
	map uid_exact {
		type uid : verdict
		elements = { 1003 : goto profile_1, 1001 : goto profile_2,
			     1002 : goto profile_1 }
	}
	map uid_profile {
		type uid : verdict
		flags interval
		elements = { 0-999 : goto no_rule }
	}
}`
	b := `table inet ownerwall {
	counter rule_1 {
		packets 0 bytes 0
	}
	map uid_exact {
		type uid : verdict
		elements = { 1002 : goto profile_1,
			     1001 : goto profile_2, 1003 : goto profile_1 }
	}
	map uid_profile {
		type uid : verdict
		flags interval
		elements = { 0-999 : goto no_rule }
	}
}`
	if Normalize(a) != Normalize(b) {
		t.Errorf("same table, different dump order:\n%s\n---\n%s", Normalize(a), Normalize(b))
	}
	if !strings.Contains(Normalize(a), "\t\telement 1001 : goto profile_2\n") {
		t.Errorf("elements not one per line:\n%s", Normalize(a))
	}
	c := strings.Replace(b, "1001 : goto profile_2", "1001 : goto profile_1", 1)
	if Normalize(a) == Normalize(c) {
		t.Error("a changed element normalizes away")
	}
}
