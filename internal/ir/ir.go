// Package ir is ownerwall's backend-neutral ruleset: what the compiler
// produces, what each backend renders and what explain evaluates, so that
// the three cannot drift apart.
package ir

import (
	"net/netip"
)

// Action is a rule's or the default's verdict.
type Action string

const (
	Accept Action = "accept"
	Reject Action = "reject"
	Drop   Action = "drop"
)

// Direction: a `to` rule governs connections a process opens; a `serve`
// rule governs a process accepting connections (its SYN-ACK) or sending UDP
// from a local port.
type Direction string

const (
	To    Direction = "to"
	Serve Direction = "serve"
)

// MaxUID is the top of the uid space.
const MaxUID = ^uint32(0)

// Ruleset is a compiled policy.
type Ruleset struct {
	Source   string // the policy file it came from
	Outbound Action
	// Stateful is true when outbound is not accept: replies of accepted
	// connections then pass through conntrack's ESTABLISHED,RELATED shortcut,
	// which costs conntrack, so it is only used when needed.
	Stateful bool
	// NewFlowsOnly: `to` rules on UDP and other non-TCP protocols see
	// only the first packet of each flow (conntrack's NEW), so that a
	// server's answers are never taken for connections it opens. Set when
	// Stateful, and when any such rule exists; a policy of TCP rules only
	// with outbound: accept loads no conntrack at all.
	NewFlowsOnly bool
	Rules        []Rule
	// Blocks partition Rules into runs the kernel tests as one rule.
	Blocks   []Block
	Profiles []Profile
	// Dispatch lists the uid maps: one per unit context (deepest cgroup
	// first), then the default one (Unit == ""), always last.
	Dispatch []Dispatch
}

// Rule is one policy rule with its principals resolved.
type Rule struct {
	Index  int // 1-based position in the policy
	Name   string
	Dir    Direction
	Action Action
	Log    bool `json:",omitempty"`
	Match  Match
	Who    []Principal `json:",omitempty"`
	Except []Principal `json:",omitempty"`
}

// Match is a rule's destination (for serve: its local ports).
type Match struct {
	TCP *Ports `json:",omitempty"` // nil: TCP is not matched (unless AllProtocols)
	UDP *Ports `json:",omitempty"`
	// AllProtocols: neither tcp nor udp was given, every protocol matches.
	AllProtocols bool           `json:",omitempty"`
	AnyHost      bool           `json:",omitempty"`
	Local        bool           `json:",omitempty"` // every address of this host, both families
	Nets         []netip.Prefix `json:",omitempty"` // sorted, IPv4 first
	Names        []ResolvedName `json:",omitempty"` // host names and what they resolved to
}

// ResolvedName records a host name's addresses at compile time.
type ResolvedName struct {
	Name  string
	Addrs []netip.Addr
}

// Ports is a set of ports of one protocol.
type Ports struct {
	Any    bool        `json:",omitempty"`
	Ranges []PortRange `json:",omitempty"` // sorted, merged
}

// PortRange is an inclusive port range.
type PortRange struct{ Lo, Hi uint16 }

// Principal is one resolved principal reference.
type Principal struct {
	Ref  string    // as written in the policy
	Kind string    // user, uid, group, gid, unit, everyone
	UIDs Intervals `json:",omitempty"`
	// Via says, for group members, whether the group is the account's
	// primary or a supplementary group; and for users, the account name.
	// It is for explain, and not recorded with an applied ruleset: with
	// 100,000 members it would make every apply write (and the next one
	// read) megabytes; explain --live asks the accounts database again.
	Via Via `json:"-"`
	// Unit principals: the unit's full name and its cgroup v2 path
	// (relative to the cgroup2 mount).
	Unit   string `json:",omitempty"`
	Cgroup string `json:",omitempty"`
}

// Via says how uids belong to a principal, for explain. The compiler's
// are built lazily: a group of 100,000 members costs no sentence until
// explain asks about one uid.
type Via interface {
	// Why returns the reason uid belongs to the principal, if known.
	Why(uid uint32) (string, bool)
}

// ViaText is a Via that holds its sentences, one per uid.
type ViaText map[uint32]string

func (v ViaText) Why(uid uint32) (string, bool) {
	s, ok := v[uid]
	return s, ok
}

// Interval is an inclusive uid interval.
type Interval struct{ Lo, Hi uint32 }

// Block is a run of consecutive rules (indices into Ruleset.Rules) with
// the same direction, destination and action, none of them logged. For a
// uid that at least one of them applies to, the first such rule decides
// exactly as any other would: the same packets, the same verdict. So the
// kernel tests a block as one rule, for the union of its rules' uids, and
// counts it with one counter. One rule per account (a web host's, a
// tunnel's allow list) is one block, not one rule per account.
type Block struct {
	Rules []int
}

// First is the rule that names the block (its counter and chain rules).
func (b Block) First() int { return b.Rules[0] }

// Profile is the ordered list of blocks (indices into Ruleset.Blocks) that
// apply to every uid mapped to it. Accounts whose effective policy is the
// same share one profile.
type Profile struct {
	ID     int
	Blocks []int
}

// ProfileRules lists the rules of profile p's blocks, in order.
func (rs *Ruleset) ProfileRules(p int) []int {
	var out []int
	for _, b := range rs.Profiles[p].Blocks {
		out = append(out, rs.Blocks[b].Rules...)
	}
	return out
}

// Dispatch maps uids to profiles, for sockets in one cgroup context.
type Dispatch struct {
	Unit   string // "" for the default context
	Cgroup string // cgroup v2 path of the unit
	Level  int    // depth of Cgroup (number of path components)
	UIDs   UIDRanges
}

// UIDRange maps an inclusive uid interval to a profile. Profile -1 means no
// rule applies (only the outbound default).
type UIDRange struct {
	Lo, Hi  uint32
	Profile int
}

// Contains reports whether p matches port.
func (p *Ports) Contains(port uint16) bool {
	if p == nil {
		return false
	}
	if p.Any {
		return true
	}
	for _, r := range p.Ranges {
		if port >= r.Lo && port <= r.Hi {
			return true
		}
	}
	return false
}

// ProfileOf returns the profile index for uid in dispatch d, or -1.
func (d *Dispatch) ProfileOf(uid uint32) int {
	lo, hi := 0, len(d.UIDs)
	for lo < hi {
		m := (lo + hi) / 2
		switch r := d.UIDs[m]; {
		case uid < r.Lo:
			hi = m
		case uid > r.Hi:
			lo = m + 1
		default:
			return r.Profile
		}
	}
	return -1
}

// Serves reports whether any serve rule governs TCP, and UDP: those
// packets must meet the profile before conntrack's reply shortcut.
func (rs *Ruleset) Serves() (tcp, udp bool) {
	for _, r := range rs.Rules {
		if r.Dir == Serve {
			tcp = tcp || r.Match.TCP != nil
			udp = udp || r.Match.UDP != nil
		}
	}
	return tcp, udp
}
