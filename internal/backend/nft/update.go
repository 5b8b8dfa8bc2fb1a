package nft

import (
	"sigs.k8s.io/knftables"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// Update returns a transaction that turns the loaded ruleset prev into
// next by changing uid map elements only, when that is all that differs
// (a group membership change, an account added or removed): chains, rules
// and counters stay as they are. ok is false when anything else changed;
// then the whole table is replaced with Script.
func Update(prev, next *ir.Ruleset) (script string, changes int, ok bool) {
	if prev == nil || len(prev.Dispatch) != len(next.Dispatch) || skeleton(prev) != skeleton(next) {
		return "", 0, false
	}
	tx := NewTransaction()
	for i := range next.Dispatch {
		old := map[string]string{}
		for _, e := range elements(prev, i) {
			old[e.Key[0]] = e.Value[0]
		}
		now := map[string]string{}
		for _, e := range elements(next, i) {
			now[e.Key[0]] = e.Value[0]
		}
		// Deletions first: a range that is split or merged must leave
		// before its pieces arrive, in the same transaction.
		for _, e := range elements(prev, i) {
			if v, kept := now[e.Key[0]]; !kept || v != e.Value[0] {
				tx.Delete(&knftables.Element{Map: e.Map, Key: e.Key})
				changes++
			}
		}
		for _, e := range elements(next, i) {
			if v, had := old[e.Key[0]]; !had || v != e.Value[0] {
				tx.Add(e)
				changes++
			}
		}
	}
	return tx.String(), changes, true
}

// skeleton is the script without the uid map elements.
func skeleton(rs *ir.Ruleset) string {
	bare := *rs
	bare.Dispatch = make([]ir.Dispatch, len(rs.Dispatch))
	for i, d := range rs.Dispatch {
		d.UIDs = nil
		bare.Dispatch[i] = d
	}
	return Script(&bare)
}
