package nft

import (
	"math/rand/v2"
	"testing"
)

// randomEntries is a sorted, non-overlapping element list over uids
// 0..199, with one of three verdicts.
func randomEntries(r *rand.Rand) []entry {
	var out []entry
	for lo := uint32(r.IntN(5)); lo < 200; {
		hi := lo + uint32(r.IntN(3))
		if r.IntN(3) > 0 {
			out = append(out, entry{lo, hi, []string{"accept", "goto profile_1", "goto profile_2"}[r.IntN(3)]})
		}
		lo = hi + 1 + uint32(r.IntN(3))
	}
	return out
}

// TestDiffEntries: deleting gone from old and adding come gives now, and
// nothing is deleted or added that both lists hold.
func TestDiffEntries(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 22))
	for range 1000 {
		old, now := randomEntries(r), randomEntries(r)
		if r.IntN(4) == 0 { // mostly equal lists, a few changes
			now = append([]entry(nil), old...)
			if len(now) > 0 {
				k := r.IntN(len(now))
				now[k].verdict = "goto profile_9"
			}
		}
		gone, come := diffEntries(old, now)
		set := map[entry]bool{}
		for _, e := range old {
			set[e] = true
		}
		for _, e := range gone {
			if !set[e] {
				t.Fatalf("deletes %v, which old lacks", e)
			}
			delete(set, e)
		}
		for _, e := range come {
			if set[e] {
				t.Fatalf("adds %v, which is still there", e)
			}
			set[e] = true
		}
		want := map[entry]bool{}
		for _, e := range now {
			want[e] = true
		}
		if len(set) != len(want) {
			t.Fatalf("old %v\nnow %v\ngone %v come %v: got %d elements, want %d", old, now, gone, come, len(set), len(want))
		}
		for e := range want {
			if !set[e] {
				t.Fatalf("old %v\nnow %v: %v missing after the diff", old, now, e)
			}
		}
		for _, e := range gone {
			if want[e] {
				t.Fatalf("deletes %v, which now holds too", e)
			}
		}
	}
}
