package importer

import (
	"fmt"
	"strings"

	"github.com/ownerwall/ownerwall/internal/policy"
)

// merged is the policy, before it is written.
type merged struct {
	outbound policy.Action
	rules    []*outRule
	notes    []note // after the last rule
	multi    bool   // an IPv4 and an IPv6 ruleset: names say which line
}

// maxAlign bounds the table used to align two rulesets (rules x rules).
const maxAlign = 4 << 20

// merge makes one policy of the rulesets' rules. Rules the two families
// have in common are imported once; the others keep their place, IPv4
// first. Then it warns about guards on loopback addresses only, guards
// one family lacks, and guarded ports nothing listens on.
func (im *importer) merge(results []*walkResult) *merged {
	m := &merged{outbound: policy.Accept}
	switch len(results) {
	case 0:
		return m
	case 1:
		r := results[0]
		m.outbound, m.rules, m.notes = r.outbound, r.rules, r.notes
		if m.outbound == policy.Drop {
			out := r.rs.chains["OUTPUT"]
			im.warnf(source{file: r.rs.file, fileIdx: r.rs.fileIdx, line: out.line},
				"the OUTPUT policy is DROP and only the %s ruleset was given: the imported outbound: drop applies to %s too", r.rs.fam, r.rs.fam.other())
		}
		for _, o := range m.rules {
			o.oneFamily = true
		}
	default:
		a, b := results[0], results[1]
		if a.rs.fam == fam6 {
			a, b = b, a
		}
		m.multi = true
		m.outbound = a.outbound
		if a.outbound != b.outbound {
			m.outbound = policy.Drop
			acc := a
			if acc.outbound != policy.Accept {
				acc = b
			}
			out := acc.rs.chains["OUTPUT"]
			im.warnf(source{file: acc.rs.file, fileIdx: acc.rs.fileIdx, line: out.line},
				"the OUTPUT policies differ (IPv4 %s, IPv6 %s): the imported outbound is drop, so %s connections that no rule decides are now dropped",
				strings.ToUpper(string(a.outbound)), strings.ToUpper(string(b.outbound)), acc.rs.fam)
		}
		for _, op := range align(a.rules, b.rules) {
			switch {
			case op.a >= 0 && op.b >= 0:
				m.rules = append(m.rules, pair(a.rules[op.a], b.rules[op.b]))
			case op.a >= 0:
				a.rules[op.a].oneFamily = true
				m.rules = append(m.rules, a.rules[op.a])
			default:
				b.rules[op.b].oneFamily = true
				m.rules = append(m.rules, b.rules[op.b])
			}
		}
		m.notes = append(append([]note(nil), a.notes...), b.notes...)
	}
	for _, o := range m.rules {
		im.warnLoopback(o)
		if o.oneFamily {
			im.warnOneFamily(o, m.multi)
		}
		im.warnListening(o)
	}
	return m
}

// pairKey is what two rules of different families must share to be
// imported as one: everything but their addresses.
func pairKey(r *outRule) string {
	c := r.c
	c.hosts = hostSet{kind: c.hosts.kind}
	return fmt.Sprintf("%s %s %t %s", r.dir, r.action, r.log, c.key())
}

func pair(a, b *outRule) *outRule {
	r := *a
	r.srcs = append(append([]source(nil), a.srcs...), b.srcs...)
	r.fams = append(append([]family(nil), a.fams...), b.fams...)
	r.notes = append(append([]note(nil), a.notes...), b.notes...)
	if r.comment == "" {
		r.comment = b.comment
	}
	if a.c.hosts.kind == hostList {
		list := append([]hostEntry(nil), a.c.hosts.list...)
		for _, h := range b.c.hosts.list {
			list = appendHost(list, h)
		}
		r.c.hosts = hostSet{kind: hostList, list: list}
	}
	return &r
}

type alignOp struct{ a, b int }

// align pairs equal rules of a and b (a longest common subsequence, or a
// greedy walk when the rulesets are huge), keeping the order of each.
func align(a, b []*outRule) []alignOp {
	ka := make([]string, len(a))
	kb := make([]string, len(b))
	for i, r := range a {
		ka[i] = pairKey(r)
	}
	for j, r := range b {
		kb[j] = pairKey(r)
	}
	var ops []alignOp
	n, m := len(ka), len(kb)
	if n*m > maxAlign {
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ka[i] == kb[j]:
				ops = append(ops, alignOp{i, j})
				i++
				j++
			case i < n:
				ops = append(ops, alignOp{i, -1})
				i++
			default:
				ops = append(ops, alignOp{-1, j})
				j++
			}
		}
		return ops
	}
	// lcs[i][j]: the longest common subsequence of ka[i:] and kb[j:].
	w := m + 1
	lcs := make([]int32, (n+1)*w)
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if ka[i] == kb[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && ka[i] == kb[j]:
			ops = append(ops, alignOp{i, j})
			i++
			j++
		case j == m || (i < n && lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			ops = append(ops, alignOp{i, -1})
			i++
		default:
			ops = append(ops, alignOp{-1, j})
			j++
		}
	}
	return ops
}

// warnOneFamily warns about an owner rule that only one family has.
// bothGiven: the other family's ruleset was given, and lacks it.
func (im *importer) warnOneFamily(r *outRule, bothGiven bool) {
	f := r.fams[0]
	if !r.c.hasOwner() {
		// A rule without owner matters as much when it now decides the
		// other family's connections, which the other ruleset left to
		// other rules.
		if bothGiven && (r.dir == policy.Serve || r.c.hosts.kind != hostList) {
			im.warnf(r.srcs[0], "%s only: the %s ruleset has no equivalent rule, and the imported rule covers %s too: check that it should decide %s connections", f, f.other(), f.other(), f.other())
		}
		return
	}
	why := "no ip6tables-save output was given, so this guard does not exist for IPv6 (IPv6 is open)"
	if f == fam6 {
		why = "no iptables-save output was given, so this guard does not exist for IPv4 (IPv4 is open)"
	}
	if bothGiven {
		why = fmt.Sprintf("the %s ruleset has no equivalent rule, so %s is open", f.other(), f.other())
	}
	tail := fmt.Sprintf("the imported rule covers %s too", f.other())
	if r.dir == policy.To && r.c.hosts.kind == hostList {
		if r.c.hosts.loopbackOnly() {
			tail = "host: local would cover both families"
		} else {
			tail = fmt.Sprintf("add the %s addresses to the imported rule's host", f.other())
		}
	}
	im.warnf(r.srcs[0], "%s only: %s; %s", f, why, tail)
}

// warnLoopback warns about an owner rule on loopback addresses only.
func (im *importer) warnLoopback(r *outRule) {
	if r.dir != policy.To || !r.c.hasOwner() || !r.c.hosts.loopbackOnly() {
		return
	}
	var has4, has6, all4 bool
	var names []string
	for _, h := range r.c.hosts.list {
		names = append(names, h.String())
		if h.prefix.Addr().Is4() {
			has4 = true
			all4 = all4 || h.prefix.Bits() == 8
		} else {
			has6 = true
		}
	}
	var ways []string
	if has4 && !all4 {
		ways = append(ways, "another loopback address (127.0.0.2)")
	}
	ways = append(ways, "the host's own addresses (its LAN and public ones)")
	if !has6 {
		ways = append(ways, "IPv6 (::1)")
	}
	if !has4 {
		ways = append(ways, "IPv4 (127.0.0.1)")
	}
	last := len(ways) - 1
	how := ways[last]
	if last > 0 {
		how = strings.Join(ways[:last], ", ") + " or " + ways[last]
	}
	for _, src := range r.srcs {
		im.warnf(src, "a guard on %s only: a process gets around it through %s; use host: local, which covers every local address in both families", strings.Join(names, ", "), how)
	}
}

// warnListening warns about local ports a rule names that nothing listens
// on: a typo, most likely, and the service it meant is unguarded.
func (im *importer) warnListening(r *outRule) {
	if im.opt.Listening == nil || r.c.proto == "" {
		return
	}
	ports := r.c.sports
	if r.dir == policy.To {
		if r.c.hosts.kind != hostLocal && !r.c.hosts.loopbackOnly() {
			return
		}
		ports = r.c.dports
	}
	rs, all := ports.policyRanges()
	if all {
		return
	}
	checked := 0
	for _, pr := range rs {
		if pr.lo != pr.hi {
			continue
		}
		if checked++; checked > 64 {
			return
		}
		p := pr.lo
		if im.opt.Listening(r.c.proto, p) {
			continue
		}
		near := ""
		for _, q := range []int{int(p) - 1, int(p) + 1} {
			if q >= 1 && q <= 65535 && im.opt.Listening(r.c.proto, uint16(q)) {
				near = fmt.Sprintf(" (%s port %d does)", r.c.proto, q)
				break
			}
		}
		for _, src := range r.srcs {
			im.warnf(src, "nothing listens on %s port %d%s: a typo? The rule guards nothing there", r.c.proto, p, near)
		}
	}
}
