package compile

import (
	"encoding/binary"
	"slices"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// partition splits the uid space at every interval boundary of every set
// (one per block) and gives each piece the profile of the blocks covering
// it. Cost is O(B log S) in the number of boundaries B and of sets S, plus
// the size of each distinct profile once: it does not grow with rules
// times accounts.
func partition(sets [][]ir.Interval, pt *profileTable) []ir.UIDRange {
	evs := boundaries(sets)
	out := make([]ir.UIDRange, 0, len(evs)+1)
	var active []int // indices of the sets covering pos, in order
	id, changed := -1, false
	emit := func(lo, hi uint64) {
		if changed {
			id, changed = pt.id(active), false
		}
		if n := len(out); n > 0 && out[n-1].Profile == id && uint64(out[n-1].Hi)+1 == lo {
			out[n-1].Hi = uint32(hi)
			return
		}
		out = append(out, ir.UIDRange{Lo: uint32(lo), Hi: uint32(hi), Profile: id})
	}
	pos := uint64(0)
	for i := 0; i < len(evs); {
		at := evs[i].at()
		if at > pos {
			emit(pos, at-1)
			pos = at
		}
		for ; i < len(evs) && evs[i].at() == at; i++ {
			set := evs[i].set()
			j, found := slices.BinarySearch(active, set)
			switch {
			case evs[i].add() && !found:
				active = slices.Insert(active, j, set)
			case !evs[i].add() && found:
				active = slices.Delete(active, j, j+1)
			default:
				continue
			}
			changed = true
		}
	}
	if pos <= uint64(ir.MaxUID) {
		emit(pos, uint64(ir.MaxUID))
	}
	return slices.Clip(out)
}

// event is a boundary of one set's interval, packed for sorting: where
// (33 bits: one past MaxUID is a place), whether the set starts (1) or
// ends (0) there, so that ends come first, and which set (30 bits).
type event uint64

const eventSetBits = 30

func newEvent(at uint64, add bool, set int) event {
	e := at<<(eventSetBits+1) | uint64(set)
	if add {
		e |= 1 << eventSetBits
	}
	return event(e)
}

func (e event) at() uint64 { return uint64(e) >> (eventSetBits + 1) }
func (e event) add() bool  { return e&(1<<eventSetBits) != 0 }
func (e event) set() int   { return int(e & (1<<eventSetBits - 1)) }

// boundaries lists the events of every set in order. A normalized set's
// own events are in order already, so this merges S sorted runs.
func boundaries(sets [][]ir.Interval) []event {
	n := 0
	for _, ivs := range sets {
		n += 2 * len(ivs)
	}
	if len(sets) >= 1<<eventSetBits {
		panic("compile: too many blocks to partition")
	}
	evs := make([]event, 0, n)
	runs := make([]int, 1, len(sets)+1) // run k is evs[runs[k]:runs[k+1]]
	for i, ivs := range sets {
		if len(ivs) == 0 {
			continue
		}
		for _, iv := range ivs {
			evs = append(evs, newEvent(uint64(iv.Lo), true, i), newEvent(uint64(iv.Hi)+1, false, i))
		}
		runs = append(runs, len(evs))
	}
	return mergeRuns(evs, runs, func(a, b event) bool { return a < b })
}

// mergeRuns sorts evs, made of the sorted runs that runs delimits (run k
// is evs[runs[k]:runs[k+1]]), by merging neighbouring runs until one is left:
// O(n log k), against O(n log n) for sorting it all.
func mergeRuns[E any](evs []E, runs []int, less func(a, b E) bool) []E {
	if len(runs) <= 2 {
		return evs
	}
	// Runs already in order with the one before are one run (with one
	// rule per account, listed by uid, all of them are).
	end := runs[len(runs)-1]
	joined := runs[:1]
	for _, b := range runs[1 : len(runs)-1] {
		if b > joined[len(joined)-1] && b < end && less(evs[b], evs[b-1]) {
			joined = append(joined, b)
		}
	}
	runs = append(joined, end)
	if len(runs) <= 2 {
		return evs
	}
	buf := make([]E, len(evs))
	for len(runs) > 2 {
		merged := runs[:1]
		for k := 0; k+1 < len(runs); k += 2 {
			lo, mid := runs[k], runs[k+1]
			if k+2 >= len(runs) { // an odd run out: copied as it is
				copy(buf[lo:mid], evs[lo:mid])
				merged = append(merged, mid)
				continue
			}
			hi := runs[k+2]
			mergeTwo(buf[lo:hi], evs[lo:mid], evs[mid:hi], less)
			merged = append(merged, hi)
		}
		runs = merged
		evs, buf = buf, evs
	}
	return evs
}

// mergeTwo merges sorted a and b into dst, a first among equals.
func mergeTwo[E any](dst, a, b []E, less func(a, b E) bool) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if less(b[j], a[i]) {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
		k++
	}
	k += copy(dst[k:], a[i:])
	copy(dst[k:], b[j:])
}

// profileTable numbers the distinct block lists, in order of first use.
type profileTable struct {
	byKey    map[string]int
	profiles []ir.Profile
	key      []byte // scratch: looking a key up allocates nothing
	// recent are the last profiles looked up: the uid space mostly
	// alternates between a few (inside a group, outside it).
	recent [4]int
	next   int
}

func (t *profileTable) id(blocks []int) int {
	if len(blocks) == 0 {
		return -1
	}
	for _, id := range t.recent {
		if id < len(t.profiles) && slices.Equal(t.profiles[id].Blocks, blocks) {
			return id
		}
	}
	id := t.lookup(blocks)
	t.recent[t.next], t.next = id, (t.next+1)%len(t.recent)
	return id
}

func (t *profileTable) lookup(blocks []int) int {
	t.key = t.key[:0]
	for _, b := range blocks {
		t.key = binary.AppendUvarint(t.key, uint64(b))
	}
	if id, ok := t.byKey[string(t.key)]; ok {
		return id
	}
	id := len(t.profiles)
	t.profiles = append(t.profiles, ir.Profile{ID: id, Blocks: append([]int(nil), blocks...)})
	t.byKey[string(t.key)] = id
	return id
}
