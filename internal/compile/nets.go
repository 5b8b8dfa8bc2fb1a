package compile

import (
	"net/netip"
	"sort"
)

func netipPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// sortNets orders prefixes IPv4 first, then by address, and drops any prefix
// contained in another: nft refuses overlapping interval elements.
func sortNets(in []netip.Prefix) []netip.Prefix {
	if len(in) == 0 {
		return nil
	}
	s := append([]netip.Prefix(nil), in...)
	sort.Slice(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Addr().Is4() != b.Addr().Is4() {
			return a.Addr().Is4()
		}
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c < 0
		}
		return a.Bits() < b.Bits()
	})
	var out []netip.Prefix
	for _, p := range s {
		covered := false
		for _, q := range out {
			if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}
