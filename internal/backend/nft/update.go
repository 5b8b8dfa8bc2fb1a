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
// from old into now. Both lists are sorted by their first uid and do not
// overlap (dispatchEntries makes them so): one merge, no lookups.
func diff(dels, adds *strings.Builder, name string, old, now []entry) int {
	gone, come := diffEntries(old, now)
	writeElements(dels, "delete", name, gone, false)
	writeElements(adds, "add", name, come, true)
	return len(gone) + len(come)
}

// diffEntries is what leaves (gone) and what arrives (come) between two
// sorted, non-overlapping element lists.
func diffEntries(old, now []entry) (gone, come []entry) {
	i, j := 0, 0
	for i < len(old) || j < len(now) {
		switch {
		case j == len(now) || i < len(old) && old[i].lo < now[j].lo:
			gone = append(gone, old[i])
			i++
		case i == len(old) || now[j].lo < old[i].lo:
			come = append(come, now[j])
			j++
		default: // the same first uid
			if old[i] != now[j] {
				gone, come = append(gone, old[i]), append(come, now[j])
			}
			i, j = i+1, j+1
		}
	}
	return gone, come
}

// skeleton is the script without the uid map elements.
func skeleton(rs *ir.Ruleset) string {
	tx := NewTransaction()
	Build(tx, rs)
	return tx.String()
}
