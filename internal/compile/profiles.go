package compile

import (
	"sort"
	"strings"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// unitContext is a set of referenced units a socket can be in at once: a
// unit and the referenced units above it in the cgroup tree.
type unitContext struct {
	unit, cgroup string
	in           map[string]bool // cgroup paths the socket counts as inside
}

// buildDispatch computes, for every cgroup context, which profile each uid
// gets, and the profiles themselves (shared between contexts).
func buildDispatch(rs *ir.Ruleset) {
	rs.Blocks = blocks(rs.Rules)
	pt := &profileTable{byKey: map[string]int{}}
	for _, c := range unitContexts(rs) {
		sets := make([][]ir.Interval, len(rs.Blocks))
		for i, b := range rs.Blocks {
			sets[i] = blockUIDs(rs, b, c.in)
		}
		d := ir.Dispatch{Unit: c.unit, Cgroup: c.cgroup}
		if c.cgroup != "" {
			d.Level = strings.Count(c.cgroup, "/") + 1
		}
		d.UIDs = partition(sets, pt)
		rs.Dispatch = append(rs.Dispatch, d)
	}
	rs.Profiles = stableOrder(pt.profiles, rs.Dispatch)
}

// blocks groups consecutive rules that the kernel can test as one: same
// direction, action and destination, and no log (a log line names its
// rule).
func blocks(rules []ir.Rule) []ir.Block {
	var starts []int
	for i := range rules {
		if n := len(starts); n > 0 && sameTest(&rules[starts[n-1]], &rules[i]) {
			continue
		}
		starts = append(starts, i)
	}
	if len(starts) == 0 {
		return nil
	}
	all := make([]int, len(rules)) // every block's list, in one array
	for i := range all {
		all[i] = i
	}
	out := make([]ir.Block, len(starts))
	for k, start := range starts {
		end := len(rules)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		out[k].Rules = all[start:end:end]
	}
	return out
}

func sameTest(a, b *ir.Rule) bool {
	return !a.Log && !b.Log && a.Dir == b.Dir && a.Action == b.Action && sameMatch(a.Match, b.Match)
}

func sameMatch(a, b ir.Match) bool {
	if a.AllProtocols != b.AllProtocols || a.AnyHost != b.AnyHost || a.Local != b.Local ||
		!samePorts(a.TCP, b.TCP) || !samePorts(a.UDP, b.UDP) || len(a.Nets) != len(b.Nets) {
		return false
	}
	for i := range a.Nets {
		if a.Nets[i] != b.Nets[i] {
			return false
		}
	}
	return true
}

func samePorts(a, b *ir.Ports) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Any != b.Any || len(a.Ranges) != len(b.Ranges) {
		return false
	}
	for i := range a.Ranges {
		if a.Ranges[i] != b.Ranges[i] {
			return false
		}
	}
	return true
}

// stableOrder numbers profiles by their block lists, not by the first uid
// that has them: then moving an account between existing profiles (a
// group membership change) changes one map element and no chain, and
// apply can load just that element.
func stableOrder(ps []ir.Profile, ds []ir.Dispatch) []ir.Profile {
	sorted := append([]ir.Profile(nil), ps...)
	sort.Slice(sorted, func(i, j int) bool { return lessInts(sorted[i].Blocks, sorted[j].Blocks) })
	renumber := make([]int, len(ps))
	for newID := range sorted {
		renumber[sorted[newID].ID] = newID
		sorted[newID].ID = newID
	}
	for di := range ds {
		for ui := range ds[di].UIDs {
			if p := ds[di].UIDs[ui].Profile; p >= 0 {
				ds[di].UIDs[ui].Profile = renumber[p]
			}
		}
	}
	return sorted
}

func lessInts(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// unitContexts returns the unit contexts, deepest first, then the default.
func unitContexts(rs *ir.Ruleset) []unitContext {
	units := map[string]string{} // cgroup -> first unit name
	var paths []string
	for i := range rs.Rules {
		r := &rs.Rules[i]
		for _, ps := range [2][]ir.Principal{r.Who, r.Except} {
			for j := range ps {
				if p := &ps[j]; p.Kind == "unit" && p.Cgroup != "" {
					if _, ok := units[p.Cgroup]; !ok {
						units[p.Cgroup] = p.Unit
						paths = append(paths, p.Cgroup)
					}
				}
			}
		}
	}
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "/"), strings.Count(paths[j], "/")
		if di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	var out []unitContext
	for _, path := range paths {
		c := unitContext{unit: units[path], cgroup: path, in: map[string]bool{}}
		for _, other := range paths {
			if other == path || strings.HasPrefix(path, other+"/") {
				c.in[other] = true
			}
		}
		out = append(out, c)
	}
	return append(out, unitContext{in: map[string]bool{}})
}

// blockUIDs is the union of the uids b's rules apply to, for a socket
// inside the given cgroups. The result may share memory with the rules'
// principals: it is read, never written.
func blockUIDs(rs *ir.Ruleset, b ir.Block, inCgroups map[string]bool) []ir.Interval {
	if len(b.Rules) == 1 {
		return ruleUIDs(&rs.Rules[b.First()], inCgroups)
	}
	each := make([][]ir.Interval, len(b.Rules))
	n := 0
	for i, ri := range b.Rules {
		each[i] = ruleUIDs(&rs.Rules[ri], inCgroups)
		n += len(each[i])
	}
	union := make([]ir.Interval, 0, n)
	runs := make([]int, 1, len(each)+1)
	for _, ivs := range each {
		if len(ivs) > 0 {
			union = append(union, ivs...)
			runs = append(runs, len(union))
		}
	}
	return normalizeOwned(mergeRuns(union, runs, func(a, b ir.Interval) bool { return a.Lo < b.Lo }))
}

// ruleUIDs is the set of uids the rule applies to for a socket inside the
// given cgroups: who minus except. It may share memory with r's principals.
func ruleUIDs(r *ir.Rule, inCgroups map[string]bool) []ir.Interval {
	who := principalUIDs(r.Who, inCgroups)
	if len(r.Except) == 0 {
		return who
	}
	return ir.Subtract(who, principalUIDs(r.Except, inCgroups))
}

// principalUIDs is the union of ps's uids, normalized. It may share memory
// with ps.
func principalUIDs(ps []ir.Principal, inCgroups map[string]bool) []ir.Interval {
	if len(ps) == 1 && ps[0].Kind != "unit" { // normalized already
		if len(ps[0].UIDs) == 0 {
			return nil
		}
		return ps[0].UIDs
	}
	var all []ir.Interval
	for _, p := range ps {
		if p.Kind == "unit" {
			if inCgroups[p.Cgroup] {
				return []ir.Interval{{Lo: 0, Hi: ir.MaxUID}}
			}
			continue
		}
		all = append(all, p.UIDs...)
	}
	return normalizeOwned(all)
}
