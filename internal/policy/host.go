package policy

import (
	"net/netip"
	"strings"
)

func decodeHosts(c *collector, n *node) []Host {
	items := []*node{n}
	if n.kind == seqNode {
		items = n.items
		if len(items) == 0 {
			c.addf(n.pos, "host is an empty list: give local, any, addresses or names")
		}
	}
	var out []Host
	for _, it := range items {
		if it.kind != scalarNode {
			c.addf(it.pos, "host takes local, any, an address, a CIDR, a hostname, or a list of these")
			continue
		}
		h, msg := ParseHost(it.scalar)
		if msg != "" {
			c.addf(it.pos, "host %q: %s", it.scalar, msg)
			continue
		}
		h.Pos = it.pos
		if h.Kind == HostAny {
			if len(items) > 1 {
				c.addf(it.pos, "host: any cannot be combined with other hosts")
			}
			return nil // any host: no address match
		}
		out = append(out, h)
	}
	return out
}

// ParseHost reads one host entry. It returns a message when s is not valid.
func ParseHost(s string) (Host, string) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "local":
		return Host{Kind: HostLocal}, ""
	case "any":
		return Host{Kind: HostAny}, ""
	case "":
		return Host{}, "empty host"
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Host{}, "not a valid CIDR"
		}
		if p.Addr().Zone() != "" {
			return Host{}, "zones are not supported"
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return Host{Kind: HostPrefix, Prefix: p.Masked()}, ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Host{}, "zones are not supported"
		}
		a = a.Unmap()
		return Host{Kind: HostPrefix, Prefix: netip.PrefixFrom(a, a.BitLen())}, ""
	}
	if !validHostname(s) {
		return Host{}, "not local, any, an address, a CIDR or a hostname"
	}
	return Host{Kind: HostName, Name: strings.ToLower(strings.TrimSuffix(s, "."))}, ""
}

func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	// All-numeric dotted names are mistyped addresses, not hostnames.
	allDigits := true
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r == '.') {
			allDigits = false
		}
	}
	return !allDigits
}
