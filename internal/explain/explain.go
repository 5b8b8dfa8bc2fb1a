// Package explain evaluates the compiled ruleset (the same IR the backends
// render) for one connection attempt, and says why.
package explain

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// Query is one connection attempt: a socket owned by UID (optionally in the
// cgroup of a unit) opening a connection to Addr:Port, or, for Dir serve,
// accepting one on local port Port.
type Query struct {
	UID    uint32
	Cgroup string // cgroup v2 path of the socket's process, "" if none
	Dir    ir.Direction
	Addr   netip.Addr // destination (to only)
	Port   uint16
	Proto  string // "tcp", "udp", or another protocol name
	// SrcPort is the local port a `to` datagram is sent from; 0 means an
	// ephemeral port no serve rule names.
	SrcPort uint16
}

// Result is the verdict and its reasons.
type Result struct {
	Verdict  ir.Action `json:"verdict"`
	Rule     *string   `json:"rule"`     // deciding rule's name; nil: the outbound default
	Position int       `json:"position"` // deciding rule's 1-based position, 0 for the default
	Profile  int       `json:"profile"`  // 1-based profile chain, 0 for none
	Reasons  []string  `json:"reasons"`
}

// LocalFunc reports whether an address belongs to this host.
type LocalFunc func(netip.Addr) bool

// Evaluate walks rs for q exactly as the kernel walks the rendered ruleset:
// the uid (and cgroup) pick a profile, the profile's rules are tried in
// order, the first whose destination matches decides, else the outbound
// default. Rules whose destination matches but whose principals do not are
// named in the reasons, with why they do not apply: that is usually the
// answer to "why can (or can't) alice reach it".
func Evaluate(rs *ir.Ruleset, q Query, isLocal LocalFunc) Result {
	q.Addr = q.Addr.Unmap()
	d := dispatchFor(rs, q.Cgroup)
	res := Result{Verdict: rs.Outbound}
	if d.Unit != "" {
		res.Reasons = append(res.Reasons, fmt.Sprintf("the socket is in the cgroup of unit %s (%s)", d.Unit, d.Cgroup))
	}
	inProfile := map[int]bool{} // rule index -> its block is in the uid's profile
	if prof := d.ProfileOf(q.UID); prof >= 0 {
		res.Profile = prof + 1
		for _, ri := range rs.ProfileRules(prof) {
			inProfile[ri] = true
		}
	}
	blockOf := make([]int, len(rs.Rules))
	for bi, b := range rs.Blocks {
		for _, ri := range b.Rules {
			blockOf[ri] = bi
		}
	}
	skipped := map[int]int{} // block -> rules named as not applying
	for ri := range rs.Rules {
		r := &rs.Rules[ri]
		why, ok := destMatches(rs, r, q, isLocal)
		if !ok {
			continue
		}
		if !inProfile[ri] || !ruleHolds(r, q.UID, d) {
			b := blockOf[ri]
			skipped[b]++
			switch {
			case skipped[b] <= maxSkipped:
				res.Reasons = append(res.Reasons, fmt.Sprintf("rule %d %q covers this destination but not uid %d: %s", r.Index, r.Name, q.UID, notApplying(r, q.UID, d)))
			case skipped[b] == maxSkipped+1:
				res.Reasons = append(res.Reasons, fmt.Sprintf("(more rules of rules %s, which say the same for other accounts, leave uid %d out too)", rs.BlockName(b), q.UID))
			}
			continue
		}
		name := r.Name
		res.Verdict, res.Rule, res.Position = r.Action, &name, r.Index
		res.Reasons = append(res.Reasons, fmt.Sprintf("rule %d %q matches", r.Index, r.Name))
		res.Reasons = append(res.Reasons, principalReasons(r, q.UID, d)...)
		res.Reasons = append(res.Reasons, why...)
		return res
	}
	if q.Dir == ir.Serve {
		// Accepting a connection is not an outbound connection: with no
		// serve rule deciding, the SYN-ACK (or the server's answer) passes,
		// as a reply when conntrack is in use.
		res.Verdict = ir.Accept
		res.Reasons = append(res.Reasons, "no serve rule decides: accepting connections (answering from a local port) is allowed unless a serve rule says otherwise")
		return res
	}
	res.Reasons = append(res.Reasons, fmt.Sprintf("no rule matches uid %d for this destination: outbound: %s decides", q.UID, rs.Outbound))
	return res
}

// maxSkipped bounds how many rules of one block explain names as not
// applying: with one rule per account, the others are no news.
const maxSkipped = 3

// ruleHolds reports whether r's principals take the uid in: one of who
// holds and none of except.
func ruleHolds(r *ir.Rule, uid uint32, d *ir.Dispatch) bool {
	held := false
	for _, p := range r.Who {
		if _, ok := principalHolds(p, uid, d); ok {
			held = true
			break
		}
	}
	if !held {
		return false
	}
	for _, p := range r.Except {
		if _, ok := principalHolds(p, uid, d); ok {
			return false
		}
	}
	return true
}

// notApplying says why a rule's principals leave the uid out.
func notApplying(r *ir.Rule, uid uint32, d *ir.Dispatch) string {
	for _, p := range r.Except {
		if why, ok := principalHolds(p, uid, d); ok {
			return fmt.Sprintf("except %s (%s)", p.Ref, why)
		}
	}
	refs := make([]string, len(r.Who))
	for i, p := range r.Who {
		refs[i] = p.Ref
	}
	return fmt.Sprintf("not in who: %s", strings.Join(refs, ", "))
}

func dispatchFor(rs *ir.Ruleset, cgroup string) *ir.Dispatch {
	cgroup = strings.Trim(cgroup, "/")
	for i := range rs.Dispatch {
		d := &rs.Dispatch[i]
		if d.Unit == "" || cgroup == d.Cgroup || strings.HasPrefix(cgroup, d.Cgroup+"/") {
			return d
		}
	}
	return &ir.Dispatch{}
}

// principalReasons says which reference of `who` holds the uid and that no
// reference of `except` does.
func principalReasons(r *ir.Rule, uid uint32, d *ir.Dispatch) []string {
	var out []string
	for _, p := range r.Who {
		if why, ok := principalHolds(p, uid, d); ok {
			out = append(out, fmt.Sprintf("who: %s (%s)", p.Ref, why))
			break
		}
	}
	if len(r.Except) > 0 {
		refs := make([]string, len(r.Except))
		for i, p := range r.Except {
			refs[i] = p.Ref
		}
		out = append(out, fmt.Sprintf("uid %d is not in except: %s", uid, strings.Join(refs, ", ")))
	}
	return out
}

func principalHolds(p ir.Principal, uid uint32, d *ir.Dispatch) (string, bool) {
	switch p.Kind {
	case "everyone":
		return "every local process", true
	case "unit":
		if d.Unit != "" && (d.Cgroup == p.Cgroup || strings.HasPrefix(d.Cgroup, p.Cgroup+"/")) {
			return "the socket belongs to " + p.Cgroup, true
		}
		return "", false
	}
	if !ir.ContainsUID(p.UIDs, uid) {
		return "", false
	}
	if p.Via != nil {
		if via, ok := p.Via.Why(uid); ok {
			return via, true
		}
	}
	return fmt.Sprintf("uid %d is in %s", uid, p.Ref), true
}

func destMatches(rs *ir.Ruleset, r *ir.Rule, q Query, isLocal LocalFunc) ([]string, bool) {
	m := &r.Match
	var why []string
	if r.Dir != q.Dir {
		return crossMatches(r, q)
	}
	switch {
	case m.AllProtocols:
		why = append(why, "the rule covers every protocol")
	case q.Proto == "tcp" && m.TCP.Contains(q.Port):
		why = append(why, portReason("tcp", m.TCP, q.Port))
	case q.Proto == "udp" && m.UDP.Contains(q.Port):
		why = append(why, portReason("udp", m.UDP, q.Port))
	default:
		return nil, false
	}
	if r.Dir == ir.Serve || m.AnyHost {
		return why, true
	}
	if m.Local && isLocal != nil && isLocal(q.Addr) {
		return append(why, fmt.Sprintf("%s is an address of this host (host: local)", q.Addr)), true
	}
	for _, n := range m.Names {
		for _, a := range n.Addrs {
			if a.Unmap() == q.Addr {
				return append(why, fmt.Sprintf("%s resolved to %s", n.Name, q.Addr)), true
			}
		}
	}
	for _, p := range m.Nets {
		if p.Contains(q.Addr) {
			return append(why, fmt.Sprintf("%s is in %s", q.Addr, p)), true
		}
	}
	return nil, false
}

func portReason(proto string, p *ir.Ports, port uint16) string {
	if p.Any {
		return fmt.Sprintf("%s: any port", proto)
	}
	return fmt.Sprintf("%s port %d is in the rule's ports", proto, port)
}

// crossMatches handles the one packet both kinds of rule can see: a UDP
// datagram is sent to a port (to rules) and from a port (serve rules). TCP
// connection attempts (SYN) and acceptances (SYN-ACK) are distinct packets.
func crossMatches(r *ir.Rule, q Query) ([]string, bool) {
	if q.Proto != "udp" {
		return nil, false
	}
	m := &r.Match
	if q.Dir == ir.To { // a serve rule on the datagram's source port
		if m.UDP != nil && (m.UDP.Any || (q.SrcPort != 0 && m.UDP.Contains(q.SrcPort))) {
			return []string{"serve rules see every UDP datagram sent from their local ports"}, true
		}
		return nil, false
	}
	// A server's answer from a served port is a reply: `to` rules on UDP
	// see only new flows (conntrack's NEW), so they never decide it.
	return nil, false
}
