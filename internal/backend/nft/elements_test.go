package nft

import (
	"math/rand"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// TestDispatchEntriesLookUpAsTheIR: for random dispatch maps, looking a uid
// up as the output chain does (the exact map, then the range map) gives the
// verdict of the uid's profile in the IR, for every uid at and around every
// boundary; the range map's intervals never overlap, and N single accounts
// cost N exact elements and a few ranges.
func TestDispatchEntriesLookUpAsTheIR(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := range 500 {
		rs := &ir.Ruleset{Stateful: rng.Intn(2) == 0, Profiles: make([]ir.Profile, 4)}
		d := ir.Dispatch{}
		if rng.Intn(3) == 0 {
			d.Unit, d.Cgroup = "x.service", "system.slice/x.service"
		}
		lo := uint64(0)
		for lo <= uint64(ir.MaxUID) {
			width := uint64(1)
			if rng.Intn(3) == 0 {
				width = uint64(rng.Intn(50) + 1)
			}
			if rng.Intn(40) == 0 {
				width = 1 << 31
			}
			hi := min(lo+width-1, uint64(ir.MaxUID))
			p := rng.Intn(5) - 1
			if n := len(d.UIDs); n > 0 && d.UIDs[n-1].Profile == p {
				d.UIDs[n-1].Hi = uint32(hi)
			} else {
				d.UIDs = append(d.UIDs, ir.UIDRange{Lo: uint32(lo), Hi: uint32(hi), Profile: p})
			}
			lo = hi + 1
		}
		rs.Dispatch = []ir.Dispatch{d}
		exact, ranges := dispatchEntries(rs, 0)
		seen := map[uint32]bool{}
		for _, e := range exact {
			if e.lo != e.hi || seen[e.lo] {
				t.Fatalf("iter %d: exact element %+v is not a single new uid", iter, e)
			}
			seen[e.lo] = true
		}
		for i := 1; i < len(ranges); i++ {
			if ranges[i].lo <= ranges[i-1].hi {
				t.Fatalf("iter %d: ranges %+v and %+v overlap", iter, ranges[i-1], ranges[i])
			}
		}
		lookup := func(uid uint32) string {
			for _, e := range exact {
				if e.lo == uid {
					return e.verdict
				}
			}
			for _, e := range ranges {
				if uid >= e.lo && uid <= e.hi {
					return e.verdict
				}
			}
			return ""
		}
		for _, u := range d.UIDs {
			for _, uid := range []uint32{u.Lo, u.Hi, u.Lo + (u.Hi-u.Lo)/2} {
				want := uidVerdict(rs, d, d.ProfileOf(uid))
				got := lookup(uid)
				if want == "" && got == "accept" && d.Unit == "" {
					got = "" // accepting is what falling off the output chain does
				}
				if got != want {
					t.Fatalf("iter %d: uid %d goes to %q, want %q (dispatch %+v)", iter, uid, got, want, d.UIDs)
				}
			}
		}
	}
}

// TestManyAccountsAreHashElements: accounts with a rule each, spread over
// the uid space with gaps, are exact elements; the ranges stay few.
func TestManyAccountsAreHashElements(t *testing.T) {
	rs := &ir.Ruleset{Profiles: make([]ir.Profile, 2)}
	d := ir.Dispatch{UIDs: ir.UIDRanges{{Lo: 0, Hi: 99999, Profile: 1}}}
	for i := uint32(0); i < 1000; i++ {
		d.UIDs = append(d.UIDs, ir.UIDRange{Lo: 100000 + 2*i, Hi: 100000 + 2*i, Profile: 0}, ir.UIDRange{Lo: 100001 + 2*i, Hi: 100001 + 2*i, Profile: 1})
	}
	d.UIDs[len(d.UIDs)-1].Hi = ir.MaxUID
	rs.Dispatch = []ir.Dispatch{d}
	exact, ranges := dispatchEntries(rs, 0)
	if len(exact) != 1000 || len(ranges) != 1 {
		t.Errorf("%d exact elements and %d ranges, want 1000 and 1", len(exact), len(ranges))
	}
}
