package ir

import "sort"

// Normalize sorts and merges intervals.
func Normalize(in []Interval) []Interval {
	if len(in) == 0 {
		return nil
	}
	s := append([]Interval(nil), in...)
	sort.Slice(s, func(i, j int) bool { return s[i].Lo < s[j].Lo })
	out := s[:1]
	for _, iv := range s[1:] {
		last := &out[len(out)-1]
		if uint64(iv.Lo) <= uint64(last.Hi)+1 {
			if iv.Hi > last.Hi {
				last.Hi = iv.Hi
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// Subtract returns a minus b; both must be normalized.
func Subtract(a, b []Interval) []Interval {
	var out []Interval
	j := 0
	for _, iv := range a {
		lo := uint64(iv.Lo)
		hi := uint64(iv.Hi)
		for j < len(b) && uint64(b[j].Hi) < lo {
			j++
		}
		k := j
		for k < len(b) && uint64(b[k].Lo) <= hi {
			if uint64(b[k].Lo) > lo {
				out = append(out, Interval{uint32(lo), b[k].Lo - 1})
			}
			lo = uint64(b[k].Hi) + 1
			k++
		}
		if lo <= hi {
			out = append(out, Interval{uint32(lo), uint32(hi)})
		}
	}
	return out
}

// ContainsUID reports whether uid is in the normalized intervals.
func ContainsUID(ivs []Interval, uid uint32) bool {
	i := sort.Search(len(ivs), func(i int) bool { return ivs[i].Hi >= uid })
	return i < len(ivs) && ivs[i].Lo <= uid
}
