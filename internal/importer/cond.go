package importer

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ownerwall/ownerwall/internal/policy"
)

// cond is what a packet must match, as far as ownerwall can say it: an
// owner (one principal, or everyone, minus exceptions), a destination, a
// protocol and ports, a local port (serve), TCP flags and conntrack states.
// A rule's own matches are a cond; following a jump conjoins the jump's
// cond with each rule of the chain.
type cond struct {
	who    *principal // nil: everyone
	except []principal
	proto  string // "", "tcp" or "udp"
	hosts  hostSet
	dports portSet
	sports portSet
	flags  tcpFlags
	state  ctState
}

func anyCond() cond { return cond{state: stAll} }

// unrestricted reports whether c matches every packet.
func (c cond) unrestricted() bool {
	return c.who == nil && len(c.except) == 0 && c.proto == "" && c.hosts.kind == hostAny &&
		!c.dports.set && !c.sports.set && c.flags == flagsAny && c.state == stAll
}

// ownerOnly reports whether c restricts nothing but the owner.
func (c cond) ownerOnly() bool {
	return c.proto == "" && c.hosts.kind == hostAny && !c.dports.set && !c.sports.set &&
		c.flags == flagsAny && c.state == stAll
}

func (c cond) hasOwner() bool { return c.who != nil || len(c.except) > 0 }

// serve reports whether c is about a listener's packets (its local port or
// its SYN-ACK) rather than outbound connections.
func (c cond) serve() bool { return c.flags == flagsSYNACK || (c.sports.set && c.flags != flagsSYN) }

// key is a canonical text of c: equal conds have equal keys.
func (c cond) key() string {
	var b strings.Builder
	if c.who != nil {
		b.WriteString("who=" + c.who.text())
	}
	b.WriteString(" except=" + principalsText(c.except))
	fmt.Fprintf(&b, " proto=%s hosts=%s dports=%s sports=%s flags=%d state=%d", c.proto, c.hosts.key(), c.dports.key(), c.sports.key(), c.flags, c.state)
	return b.String()
}

// conj returns the cond matching both a and b. never: no packet matches
// both. why: ownerwall cannot express the conjunction.
func conj(a, b cond) (c cond, never bool, why string) {
	c.state = a.state & b.state
	if c.state == 0 {
		return c, true, ""
	}
	switch {
	case a.who == nil:
		c.who = b.who
	case b.who == nil:
		c.who = a.who
	default:
		p, empty, ok := intersect(*a.who, *b.who)
		if !ok {
			return c, false, fmt.Sprintf("the owner must be both %s and %s, and a policy rule's who is a list of alternatives", a.who.text(), b.who.text())
		}
		if empty {
			return c, true, ""
		}
		c.who = &p
	}
	c.except = appendPrincipals(append([]principal(nil), a.except...), b.except...)
	switch {
	case a.proto == "":
		c.proto = b.proto
	case b.proto == "" || a.proto == b.proto:
		c.proto = a.proto
	default:
		return c, true, ""
	}
	var hostWhy string
	c.hosts, never, hostWhy = conjHosts(a.hosts, b.hosts)
	if never || hostWhy != "" {
		return c, never, hostWhy
	}
	if c.dports, never = conjPorts(a.dports, b.dports); never {
		return c, true, ""
	}
	if c.sports, never = conjPorts(a.sports, b.sports); never {
		return c, true, ""
	}
	switch {
	case a.flags == flagsAny:
		c.flags = b.flags
	case b.flags == flagsAny || a.flags == b.flags:
		c.flags = a.flags
	default:
		return c, true, ""
	}
	return c, false, ""
}

// principal is one owner: a uid range, a user, a gid or a group.
type principal struct {
	kind   policy.PrincipalKind // KindUID, KindUser, KindGID or KindGroup
	lo, hi uint32
	name   string
}

// text is the principal as a policy writes it.
func (p principal) text() string {
	switch p.kind {
	case policy.KindUID:
		if p.lo == p.hi {
			return fmt.Sprintf("uid:%d", p.lo)
		}
		return fmt.Sprintf("uid:%d-%d", p.lo, p.hi)
	case policy.KindGID:
		return fmt.Sprintf("gid:%d", p.lo)
	case policy.KindGroup:
		return "group:" + p.name
	}
	if p.name == "everyone" {
		return "user:everyone"
	}
	return p.name
}

func principalsText(ps []principal) string {
	t := make([]string, len(ps))
	for i, p := range ps {
		t[i] = p.text()
	}
	return strings.Join(t, ",")
}

func appendPrincipals(to []principal, ps ...principal) []principal {
next:
	for _, p := range ps {
		for _, q := range to {
			if q == p {
				continue next
			}
		}
		to = append(to, p)
	}
	return to
}

// intersect returns the principal that is both a and b. empty: nobody is.
// ok false: ownerwall cannot say it (a uid that must also be in a group).
func intersect(a, b principal) (p principal, empty, ok bool) {
	if a == b {
		return a, false, true
	}
	if a.kind == policy.KindUID && b.kind == policy.KindUID {
		p = principal{kind: policy.KindUID, lo: max(a.lo, b.lo), hi: min(a.hi, b.hi)}
		return p, p.lo > p.hi, true
	}
	return p, false, false
}

type hostKind int

const (
	hostAny   hostKind = iota
	hostLocal          // every local address: -o lo, -m addrtype --dst-type LOCAL
	hostList           // addresses, networks, names
)

type hostEntry struct {
	prefix netip.Prefix // valid unless name is set
	name   string
}

func (h hostEntry) String() string {
	if h.name != "" {
		return h.name
	}
	if h.prefix.IsSingleIP() {
		return h.prefix.Addr().String()
	}
	return h.prefix.String()
}

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

// loopback reports whether the entry is within 127.0.0.0/8 or is ::1.
func (h hostEntry) loopback() bool {
	if h.name != "" {
		return false
	}
	a := h.prefix.Addr()
	if a.Is4() {
		return h.prefix.Bits() >= 8 && loopback4.Contains(a)
	}
	return a == netip.IPv6Loopback() && h.prefix.Bits() == 128
}

type hostSet struct {
	kind hostKind
	list []hostEntry
}

func (h hostSet) key() string {
	switch h.kind {
	case hostLocal:
		return "local"
	case hostList:
		t := make([]string, len(h.list))
		for i, e := range h.list {
			t[i] = e.String()
		}
		return strings.Join(t, ",")
	}
	return "any"
}

// loopbackOnly reports whether every host is a loopback address.
func (h hostSet) loopbackOnly() bool {
	if h.kind != hostList || len(h.list) == 0 {
		return false
	}
	for _, e := range h.list {
		if !e.loopback() {
			return false
		}
	}
	return true
}

func conjHosts(a, b hostSet) (hostSet, bool, string) {
	switch {
	case a.kind == hostAny:
		return b, false, ""
	case b.kind == hostAny:
		return a, false, ""
	case a.kind == hostLocal && b.kind == hostLocal:
		return a, false, ""
	case a.kind == hostLocal || b.kind == hostLocal:
		list := a.list
		if a.kind == hostLocal {
			list = b.list
		}
		// A loopback address or a single address (one of this host's, or
		// the rule never matches) is local; a network only partly is.
		for _, e := range list {
			if e.name != "" || !(e.loopback() || e.prefix.IsSingleIP()) {
				return hostSet{}, false, fmt.Sprintf("only the local addresses within %s: ownerwall cannot say that", e)
			}
		}
		return hostSet{kind: hostList, list: list}, false, ""
	}
	var out []hostEntry
	for _, x := range a.list {
		for _, y := range b.list {
			switch {
			case x.name != "" || y.name != "":
				if x != y {
					return hostSet{}, false, fmt.Sprintf("a destination that is both %s and %s: ownerwall cannot say that", x, y)
				}
				out = appendHost(out, x)
			case x.prefix.Overlaps(y.prefix):
				if x.prefix.Bits() >= y.prefix.Bits() {
					out = appendHost(out, x)
				} else {
					out = appendHost(out, y)
				}
			}
		}
	}
	if len(out) == 0 {
		return hostSet{}, true, ""
	}
	return hostSet{kind: hostList, list: out}, false, ""
}

func appendHost(to []hostEntry, h hostEntry) []hostEntry {
	for _, e := range to {
		if e == h {
			return to
		}
	}
	return append(to, h)
}

// portRange is an inclusive range; 0 may appear (iptables allows it), and
// is dropped when the policy is written.
type portRange struct{ lo, hi uint16 }

type portSet struct {
	set    bool // false: any port
	ranges []portRange
}

func (p portSet) key() string {
	if !p.set {
		return "any"
	}
	t := make([]string, len(p.ranges))
	for i, r := range p.ranges {
		t[i] = fmt.Sprintf("%d-%d", r.lo, r.hi)
	}
	return strings.Join(t, ",")
}

// normalize sorts and merges the ranges.
func (p portSet) normalize() portSet {
	rs := append([]portRange(nil), p.ranges...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo < rs[j].lo })
	var out []portRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.lo) <= uint32(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return portSet{set: p.set, ranges: out}
}

// policyRanges is the set as policy port ranges (1-65535); all: every port.
func (p portSet) policyRanges() (rs []portRange, all bool) {
	if !p.set {
		return nil, true
	}
	for _, r := range p.normalize().ranges {
		if r.lo == 0 {
			if r.hi == 0 {
				continue
			}
			r.lo = 1
		}
		rs = append(rs, r)
	}
	if len(rs) == 1 && rs[0].lo == 1 && rs[0].hi == 65535 {
		return nil, true
	}
	return rs, false
}

func conjPorts(a, b portSet) (portSet, bool) {
	if !a.set {
		return b, false
	}
	if !b.set {
		return a, false
	}
	var out []portRange
	for _, x := range a.ranges {
		for _, y := range b.ranges {
			lo, hi := max(x.lo, y.lo), min(x.hi, y.hi)
			if lo <= hi {
				out = append(out, portRange{lo, hi})
			}
		}
	}
	if len(out) == 0 {
		return portSet{}, true
	}
	return portSet{set: true, ranges: out}.normalize(), false
}

type tcpFlags int

const (
	flagsAny    tcpFlags = iota
	flagsSYN             // a connection's first packet: --syn
	flagsSYNACK          // a listener's answer to it
)

// ctState is a set of conntrack states.
type ctState uint8

const (
	stNew ctState = 1 << iota
	stEstablished
	stRelated
	stInvalid
	stUntracked
	stAll = stNew | stEstablished | stRelated | stInvalid | stUntracked
)
