package compile

import (
	"cmp"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// refPartition is partition as it was (a sort of every event, a map for
// the active set, a string key per piece): the fast one must give the
// same ranges and number the same profiles.
func refPartition(sets [][]ir.Interval) ([]ir.UIDRange, []ir.Profile) {
	type event struct {
		at   uint64
		rule int
		add  bool
	}
	byKey := map[string]int{}
	var profiles []ir.Profile
	id := func(blocks []int) int {
		if len(blocks) == 0 {
			return -1
		}
		key := ""
		for _, b := range blocks {
			key += strconv.Itoa(b) + ","
		}
		if id, ok := byKey[key]; ok {
			return id
		}
		profiles = append(profiles, ir.Profile{ID: len(profiles), Blocks: append([]int(nil), blocks...)})
		byKey[key] = len(profiles) - 1
		return len(profiles) - 1
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
		switch {
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
		id := id(rules)
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
	return out, profiles
}

// randomIntervals makes unsorted, overlapping intervals, some at the ends
// of the uid space.
func randomIntervals(r *rand.Rand, n int) []ir.Interval {
	var out []ir.Interval
	for i := 0; i < n; i++ {
		lo := uint32(r.Intn(200))
		switch r.Intn(10) {
		case 0:
			lo = ir.MaxUID - uint32(r.Intn(3))
		case 1:
			lo = 0
		}
		hi := lo + uint32(r.Intn(5))
		if hi < lo {
			hi = ir.MaxUID
		}
		out = append(out, ir.Interval{Lo: lo, Hi: hi})
	}
	return out
}

func TestPartitionAsBefore(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		sets := make([][]ir.Interval, r.Intn(7))
		for k := range sets {
			sets[k] = ir.Normalize(randomIntervals(r, r.Intn(12)))
		}
		pt := &profileTable{byKey: map[string]int{}}
		got := partition(sets, pt)
		want, wantProfiles := refPartition(sets)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(pt.profiles, wantProfiles) {
			t.Fatalf("sets %v:\n got %v %v\nwant %v %v", sets, got, pt.profiles, want, wantProfiles)
		}
	}
}

func TestNormalizeAndMergeAsBefore(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 3000; i++ {
		in := randomIntervals(r, r.Intn(20))
		want := ir.Normalize(in)
		if got := normalizeOwned(slices.Clone(in)); !reflect.DeepEqual(got, want) {
			t.Fatalf("normalize %v: %v, want %v", in, got, want)
		}
		// a union of sorted runs, merged rather than sorted
		var union []ir.Interval
		runs := []int{0}
		for k := r.Intn(5); k > 0; k-- {
			union = append(union, ir.Normalize(randomIntervals(r, r.Intn(6)))...)
			runs = append(runs, len(union))
		}
		want = ir.Normalize(union)
		merged := mergeRuns(slices.Clone(union), runs, func(a, b ir.Interval) bool { return a.Lo < b.Lo })
		if got := normalizeOwned(merged); !reflect.DeepEqual(got, want) {
			t.Fatalf("union of %v (runs %v): %v, want %v", union, runs, got, want)
		}
	}
}
