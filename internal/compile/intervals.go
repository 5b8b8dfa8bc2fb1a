package compile

import (
	"cmp"
	"slices"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// normalizeOwned is ir.Normalize on a slice the caller owns and gives up:
// it sorts and merges in place, and does not sort what is already in order
// (members and rules listed by uid, the usual case).
func normalizeOwned(s []ir.Interval) []ir.Interval {
	if len(s) == 0 {
		return nil
	}
	byLo := func(a, b ir.Interval) int { return cmp.Compare(a.Lo, b.Lo) }
	if !slices.IsSortedFunc(s, byLo) {
		slices.SortFunc(s, byLo)
	}
	out := s[:1]
	for _, iv := range s[1:] {
		last := &out[len(out)-1]
		if uint64(iv.Lo) <= uint64(last.Hi)+1 {
			last.Hi = max(last.Hi, iv.Hi)
			continue
		}
		out = append(out, iv)
	}
	return out
}
