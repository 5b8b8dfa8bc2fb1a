package nft

import (
	"strings"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// Update returns a transaction that turns the loaded ruleset prev into
// next by changing uid map elements only, when that is all that differs
// (a group membership change, an account added or removed): chains, rules
// and counters stay as they are. ok is false when anything else changed;
// then the whole table is replaced with Script.
//
// A ruleset that matches units' cgroups is never updated in place: nft
// turns a cgroup path into the cgroup's inode number when it loads the
// rule, so after a unit restarts (same path, new cgroup) only loading the
// rules again makes them match it, even though their text is unchanged.
func Update(prev, next *ir.Ruleset) (script string, changes int, ok bool) {
	if prev == nil || HasUnits(prev) || HasUnits(next) || len(prev.Dispatch) != len(next.Dispatch) || skeleton(prev) != skeleton(next) {
		return "", 0, false
	}
	var dels, adds strings.Builder
	for i := range next.Dispatch {
		oldExact, oldRanges := dispatchEntries(prev, i)
		newExact, newRanges := dispatchEntries(next, i)
		changes += diff(&dels, &adds, exactMapName(next, i), oldExact, newExact)
		changes += diff(&dels, &adds, mapName(next, i), oldRanges, newRanges)
	}
	// Deletions first: a range that is split or merged must leave before
	// its pieces arrive, in the same transaction.
	return dels.String() + adds.String(), changes, true
}

// diff writes the deletions and additions that turn map name's elements
// from old into now.
func diff(dels, adds *strings.Builder, name string, old, now []entry) int {
	had := make(map[string]string, len(old))
	for _, e := range old {
		had[e.key()] = e.verdict
	}
	has := make(map[string]string, len(now))
	for _, e := range now {
		has[e.key()] = e.verdict
	}
	var gone, come []entry
	for _, e := range old {
		if v, kept := has[e.key()]; !kept || v != e.verdict {
			gone = append(gone, e)
		}
	}
	for _, e := range now {
		if v, ok := had[e.key()]; !ok || v != e.verdict {
			come = append(come, e)
		}
	}
	writeElements(dels, "delete", name, gone, false)
	writeElements(adds, "add", name, come, true)
	return len(gone) + len(come)
}

// skeleton is the script without the uid map elements.
func skeleton(rs *ir.Ruleset) string {
	tx := NewTransaction()
	Build(tx, rs)
	return tx.String()
}
