package compile

import (
	"cmp"
	"slices"
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
			var union []ir.Interval
			for _, ri := range b.Rules {
				union = append(union, ruleUIDs(&rs.Rules[ri], c.in)...)
			}
			sets[i] = ir.Normalize(union)
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
	var out []ir.Block
	for i := range rules {
		if n := len(out); n > 0 && sameTest(&rules[out[n-1].First()], &rules[i]) {
			out[n-1].Rules = append(out[n-1].Rules, i)
			continue
		}
		out = append(out, ir.Block{Rules: []int{i}})
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
	for _, r := range rs.Rules {
		for _, p := range append(append([]ir.Principal(nil), r.Who...), r.Except...) {
			if p.Kind == "unit" && p.Cgroup != "" {
				if _, ok := units[p.Cgroup]; !ok {
					units[p.Cgroup] = p.Unit
					paths = append(paths, p.Cgroup)
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

// ruleUIDs is the set of uids the rule applies to for a socket inside the
// given cgroups: who minus except.
func ruleUIDs(r *ir.Rule, inCgroups map[string]bool) []ir.Interval {
	return ir.Subtract(principalUIDs(r.Who, inCgroups), principalUIDs(r.Except, inCgroups))
}

func principalUIDs(ps []ir.Principal, inCgroups map[string]bool) []ir.Interval {
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
	return ir.Normalize(all)
}

type profileTable struct {
	byKey    map[string]int
	profiles []ir.Profile
}

func (t *profileTable) id(blocks []int) int {
	if len(blocks) == 0 {
		return -1
	}
	var b strings.Builder
	for _, r := range blocks {
		b.WriteString(itoa(r))
		b.WriteByte(',')
	}
	key := b.String()
	if id, ok := t.byKey[key]; ok {
		return id
	}
	id := len(t.profiles)
	t.profiles = append(t.profiles, ir.Profile{ID: id, Blocks: append([]int(nil), blocks...)})
	t.byKey[key] = id
	return id
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	n := len(buf)
	for i > 0 {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	return string(buf[n:])
}

// partition splits the uid space at every interval boundary of every rule
// and gives each piece the profile of the rules covering it. Cost is
// O(B log B) in the number of boundaries, plus the size of each distinct
// profile once: it does not grow with rules times accounts.
func partition(sets [][]ir.Interval, pt *profileTable) []ir.UIDRange {
	type event struct {
		at   uint64
		rule int
		add  bool
	}
	var evs []event
	for i, ivs := range sets {
		for _, iv := range ivs {
			evs = append(evs, event{uint64(iv.Lo), i, true}, event{uint64(iv.Hi) + 1, i, false})
		}
	}
	slices.SortFunc(evs, func(a, b event) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		switch { // removals first
		case a.add == b.add:
			return 0
		case !a.add:
			return -1
		}
		return 1
	})
	active := map[int]bool{}
	var out []ir.UIDRange
	emit := func(lo, hi uint64) {
		rules := make([]int, 0, len(active))
		for r := range active {
			rules = append(rules, r)
		}
		sort.Ints(rules)
		id := pt.id(rules)
		if n := len(out); n > 0 && out[n-1].Profile == id && uint64(out[n-1].Hi)+1 == lo {
			out[n-1].Hi = uint32(hi)
			return
		}
		out = append(out, ir.UIDRange{Lo: uint32(lo), Hi: uint32(hi), Profile: id})
	}
	pos := uint64(0)
	for i := 0; i < len(evs); {
		at := evs[i].at
		if at > pos {
			emit(pos, at-1)
			pos = at
		}
		for ; i < len(evs) && evs[i].at == at; i++ {
			if evs[i].add {
				active[evs[i].rule] = true
			} else {
				delete(active, evs[i].rule)
			}
		}
	}
	if pos <= uint64(ir.MaxUID) {
		emit(pos, uint64(ir.MaxUID))
	}
	return out
}
