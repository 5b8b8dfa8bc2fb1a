// Package nft renders the ruleset as one nftables transaction on the table
// `inet ownerwall`, and loads it with `nft -f`.
package nft

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/knftables"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// Table is the name of ownerwall's own table (family inet).
const Table = "ownerwall"

const (
	outputChain = "output"
	rejectChain = "reject_packet"
	noRuleChain = "no_rule"
	defaultMap  = "uid_profile"
	exactPrefix = "uid_exact"

	tcpSYN    = "tcp flags & (syn | ack) == syn"
	tcpSYNACK = "tcp flags & (syn | ack) == syn | ack"
	ctNew     = "ct state new"
	ctReply   = "ct state established,related"
)

// NewTransaction returns a transaction for ownerwall's table that is not
// tied to a live nft: for rendering and tests.
func NewTransaction() *knftables.Transaction {
	return knftables.NewFake(knftables.InetFamily, Table).NewTransaction()
}

// Build queues, on tx, the replacement of ownerwall's whole table by rs,
// all but the uid map elements (see Script): the table is created if
// missing, deleted and created again, so that one `nft -f` swaps the old
// ruleset for the new one at once.
func Build(tx *knftables.Transaction, rs *ir.Ruleset) {
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("managed by ownerwall: do not edit, change the policy and run ownerwall apply")})

	for bi := range rs.Blocks {
		tx.Add(&knftables.Counter{Name: blockCounter(rs, bi), Comment: knftables.PtrTo(limit(counterComment(rs, bi), maxComment))})
	}
	tx.Add(&knftables.Chain{Name: rejectChain, Comment: knftables.PtrTo("reject: TCP reset, ICMP port unreachable otherwise")})
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "meta l4proto tcp reject with tcp reset"})
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "reject with icmpx port-unreachable"})

	if rs.Stateful {
		tx.Add(&knftables.Chain{Name: noRuleChain, Comment: knftables.PtrTo("no rule applies to this uid: outbound default")})
		addTail(tx, rs, noRuleChain)
	}
	for _, p := range rs.Profiles {
		name := profileChain(p.ID)
		tx.Add(&knftables.Chain{Name: name, Comment: knftables.PtrTo(limit("rules "+rs.BlockList(p.Blocks), maxComment))})
		for _, bi := range p.Blocks {
			for _, text := range ruleTexts(rs, bi) {
				tx.Add(&knftables.Rule{Chain: name, Rule: text})
			}
		}
		addTail(tx, rs, name)
	}

	for i := range rs.Dispatch {
		tx.Add(&knftables.Map{Name: exactMapName(rs, i), Type: "uid : verdict",
			Comment: knftables.PtrTo("single uids, looked up first (hash)")})
		tx.Add(&knftables.Map{Name: mapName(rs, i), Type: "uid : verdict", Flags: []knftables.SetFlag{knftables.IntervalFlag},
			Comment: knftables.PtrTo("uid ranges, for the uids not in " + exactMapName(rs, i))})
	}

	tx.Add(&knftables.Chain{
		Name:     outputChain,
		Type:     knftables.PtrTo(knftables.FilterType),
		Hook:     knftables.PtrTo(knftables.OutputHook),
		Priority: knftables.PtrTo(knftables.FilterPriority),
		Policy:   knftables.PtrTo(knftables.AcceptPolicy),
		Comment:  knftables.PtrTo("locally generated packets, by the uid that owns their socket"),
	})
	for _, text := range outputRules(rs) {
		tx.Add(&knftables.Rule{Chain: outputChain, Rule: text})
	}
}

// Flush queues the removal of ownerwall's table, whether or not it exists.
func Flush(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
}

func outputRules(rs *ir.Ruleset) []string {
	serveTCP, serveUDP := rs.Serves()
	var out []string
	if rs.Stateful {
		out = append(out, "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept")
		// Replies pass at once, except what a serve rule must see first: a
		// listener's SYN-ACK, and UDP sent from a served port.
		if serveTCP {
			out = append(out, "tcp flags & (syn | ack) != syn | ack "+ctReply+" accept")
		} else {
			out = append(out, "meta l4proto tcp "+ctReply+" accept")
		}
		if serveUDP {
			out = append(out, "meta l4proto != { tcp, udp } "+ctReply+" accept")
		} else {
			out = append(out, "meta l4proto != tcp "+ctReply+" accept")
		}
	} else {
		// Mid-connection TCP is neither a new connection nor a SYN-ACK.
		out = append(out, "tcp flags & (syn | ack) == ack accept")
	}
	for i, d := range rs.Dispatch {
		prefix := ""
		if d.Unit != "" {
			// nft takes the path verbatim between quotes (no escapes):
			// systemd's \x2d must reach it as is. compile refuses quotes.
			prefix = fmt.Sprintf("socket cgroupv2 level %d \"%s\" ", d.Level, d.Cgroup)
		}
		out = append(out, prefix+"meta skuid vmap @"+exactMapName(rs, i), prefix+"meta skuid vmap @"+mapName(rs, i))
	}
	return out
}

// addTail ends a profile chain: replies pass (stateful only), then the
// outbound default decides.
func addTail(tx *knftables.Transaction, rs *ir.Ruleset, chain string) {
	if !rs.Stateful {
		return
	}
	tx.Add(&knftables.Rule{Chain: chain, Rule: ctReply + " accept"})
	tx.Add(&knftables.Rule{Chain: chain, Rule: verdict(rs.Outbound)})
}

func verdict(a ir.Action) string {
	switch a {
	case ir.Reject:
		return "goto " + rejectChain
	case ir.Drop:
		return "drop"
	}
	return "accept"
}

// ruleTexts renders block bi as the nft rules of a profile chain: one per
// (address family or local) x (protocol clause) of its first rule, which
// tests what every rule of the block tests.
func ruleTexts(rs *ir.Ruleset, bi int) []string {
	r := &rs.Rules[rs.Blocks[bi].First()]
	tail := fmt.Sprintf("counter name %q ", blockCounter(rs, bi))
	if r.Log {
		tail += fmt.Sprintf("log prefix %q flags skuid ", logPrefix(r))
	}
	var out []string
	if r.Dir == ir.Serve {
		if r.Match.TCP != nil {
			v := verdict(r.Action)
			if r.Action == ir.Reject {
				// A reset sent back to the listener would not reach the
				// client; turning the SYN-ACK into RST|ACK refuses it at once.
				v = "tcp flags set rst | ack accept"
			}
			out = append(out, join(tcpSYNACK, portMatch("tcp sport", r.Match.TCP), tail+v))
		}
		if r.Match.UDP != nil {
			out = append(out, join(portMatch("udp sport", r.Match.UDP, "meta l4proto udp"), tail+verdict(r.Action)))
		}
		return out
	}
	state := ""
	if rs.NewFlowsOnly {
		state = ctNew
	}
	var protos []string
	m := r.Match
	if m.AllProtocols {
		protos = append(protos, tcpSYN, join("meta l4proto != tcp", state))
	}
	if m.TCP != nil {
		protos = append(protos, join(tcpSYN, portMatch("tcp dport", m.TCP)))
	}
	if m.UDP != nil {
		protos = append(protos, join(portMatch("udp dport", m.UDP, "meta l4proto udp"), state))
	}
	for _, addr := range addrMatches(m) {
		for _, proto := range protos {
			// The address test comes last: `fib daddr type local` is a
			// route lookup, measured at about four times the cost of a
			// `meta oif` test; after the flag and port tests it runs only
			// for connection attempts to the guarded ports.
			out = append(out, join(proto, addr, tail+verdict(r.Action)))
		}
	}
	return out
}

func addrMatches(m ir.Match) []string {
	if m.AnyHost {
		return []string{""}
	}
	var out []string
	if m.Local {
		out = append(out, "fib daddr type local")
	}
	var v4, v6 []string
	for _, p := range m.Nets {
		s := p.String()
		if p.IsSingleIP() {
			s = p.Addr().String()
		}
		if p.Addr().Is4() {
			v4 = append(v4, s)
		} else {
			v6 = append(v6, s)
		}
	}
	if len(v4) > 0 {
		out = append(out, "ip daddr "+set(v4))
	}
	if len(v6) > 0 {
		out = append(out, "ip6 daddr "+set(v6))
	}
	return out
}

func portMatch(expr string, p *ir.Ports, anyForm ...string) string {
	if p.Any {
		if len(anyForm) > 0 {
			return anyForm[0]
		}
		return ""
	}
	items := make([]string, 0, len(p.Ranges))
	for _, r := range p.Ranges {
		if r.Lo == r.Hi {
			items = append(items, fmt.Sprint(r.Lo))
		} else {
			items = append(items, fmt.Sprintf("%d-%d", r.Lo, r.Hi))
		}
	}
	return expr + " " + set(items)
}

func set(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func uidKey(lo, hi uint32) string {
	if lo == hi {
		return strconv.FormatUint(uint64(lo), 10)
	}
	return strconv.FormatUint(uint64(lo), 10) + "-" + strconv.FormatUint(uint64(hi), 10)
}

func mapName(rs *ir.Ruleset, i int) string {
	if rs.Dispatch[i].Unit == "" {
		return defaultMap
	}
	return fmt.Sprintf("uid_profile_unit%d", i+1)
}

func profileChain(id int) string { return fmt.Sprintf("profile_%d", id+1) }

// blockCounter names a block's counter after its rules: rule_5, or
// rules_1_3 for a block of rules 1 to 3.
func blockCounter(rs *ir.Ruleset, bi int) string {
	rules := rs.Blocks[bi].Rules
	first, last := rs.Rules[rules[0]].Index, rs.Rules[rules[len(rules)-1]].Index
	if first == last {
		return fmt.Sprintf("rule_%d", first)
	}
	return fmt.Sprintf("rules_%d_%d", first, last)
}

// counterComment is the rule's name, or for a block its first rule's name
// and how many rules it counts.
func counterComment(rs *ir.Ruleset, bi int) string {
	rules := rs.Blocks[bi].Rules
	name := sanitize(rs.Rules[rules[0]].Name)
	if len(rules) > 1 {
		suffix := fmt.Sprintf(" (and %d more rules like it)", len(rules)-1)
		return limit(name, maxComment-len(suffix)) + suffix
	}
	return limit(name, maxComment)
}

func exactMapName(rs *ir.Ruleset, i int) string {
	if rs.Dispatch[i].Unit == "" {
		return exactPrefix
	}
	return fmt.Sprintf("%s_unit%d", exactPrefix, i+1)
}

func logPrefix(r *ir.Rule) string {
	return fmt.Sprintf("ownerwall rule %d %s: ", r.Index, limit(sanitize(r.Name), 80))
}

// maxComment keeps comments under nft's limit of 128 bytes.
const maxComment = 120

// limit cuts s to at most n bytes on a character boundary, marking the cut.
func limit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// sanitize keeps text safe inside an nft quoted string.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}
