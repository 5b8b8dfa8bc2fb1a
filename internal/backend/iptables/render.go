package iptables

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// Chain names. All of ownerwall's chains are MainChain or start with
// MainChain + "-"; nothing else is touched.
const (
	MainChain   = "OWNERWALL"
	chainPrefix = MainChain + "-"
	rejectChain = "OWNERWALL-REJECT" // outbound: reject
	noRuleChain = "OWNERWALL-NORULE" // stateful: uids no rule applies to
	uidTree     = "OWNERWALL-UID"    // inner nodes of the default uid tree: OWNERWALL-UID-<k>
	unitTree    = "OWNERWALL-UNIT"   // unit i's uid tree: OWNERWALL-UNIT<i>, inner nodes OWNERWALL-UNIT<i>-<k>

	// maxChainName is XT_EXTENSION_MAXNAMELEN - 1.
	maxChainName = 28
	// maxComment is XT_MAX_COMMENT_LEN - 1.
	maxComment = 255
	// maxLogPrefix is the size of xt_log_info.prefix - 1.
	maxLogPrefix = 29
	// maxMultiport is XT_MULTI_PORTS; a range takes two.
	maxMultiport = 15
	// maxSocketUID is the highest uid xt_owner accepts (4294967295 is
	// INVALID_UID, which no socket has).
	maxSocketUID = ir.MaxUID - 1
)

// The jump that enters ownerwall, as `iptables -C OUTPUT` checks it.
var jumpSpec = []string{"OUTPUT", "-j", MainChain}

const (
	ctReply   = "-m conntrack --ctstate RELATED,ESTABLISHED"
	ctNew     = "-m conntrack --ctstate NEW"
	tcpSYN    = "--tcp-flags SYN,ACK SYN"
	tcpSYNACK = "--tcp-flags SYN,ACK SYN,ACK"
	tcpACK    = "--tcp-flags SYN,ACK ACK"

	commentDefault = "ownerwall: outbound default"
	commentReplies = "ownerwall: replies of accepted connections"
)

// chain is one of ownerwall's chains: its name and its rules, each the text
// after `-A NAME `, in iptables-save's canonical form.
type chain struct {
	name  string
	rules []string
}

// Render returns the iptables-restore and ip6tables-restore inputs (table
// filter only) that load rs with `--noflush` on a host where ownerwall is
// not loaded yet: every ownerwall chain declared and filled, and the jump
// from OUTPUT inserted. Load renders the same chains, and adapts only the
// jump and the removal of stale chains to what is live.
func Render(rs *ir.Ruleset) (v4, v6 string) {
	return transition(state{}, desiredState(build(rs, false))),
		transition(state{}, desiredState(build(rs, true)))
}

// Script is what `ownerwall export --format iptables` prints: the IPv4 and
// the IPv6 restore input, each after a comment line naming the program
// that takes it.
func Script(rs *ir.Ruleset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ownerwall: generated from %s; do not edit, run ownerwall apply --backend iptables\n", sanitize(rs.Source))
	b.WriteString("# load each part with --noflush: other chains and rules are left alone\n")
	b.WriteString(scriptBody([2]state{desiredState(build(rs, false)), desiredState(build(rs, true))}))
	return b.String()
}

// builder renders one address family.
type builder struct {
	rs     *ir.Ruleset
	v6     bool
	chains []chain
	index  map[string]int
}

func (b *builder) add(name string, rules ...string) {
	i, ok := b.index[name]
	if !ok {
		if len(name) > maxChainName {
			panic("iptables: chain name too long: " + name) // cannot happen: names are short and numbered
		}
		i = len(b.chains)
		b.index[name] = i
		b.chains = append(b.chains, chain{name: name})
	}
	b.chains[i].rules = append(b.chains[i].rules, rules...)
}

// build renders rs for one family as ownerwall's chains, main chain first.
func build(rs *ir.Ruleset, v6 bool) []chain {
	b := &builder{rs: rs, v6: v6, index: map[string]int{}}
	b.add(MainChain)
	serveTCP, serveUDP := rs.Serves()

	// Packets without a socket are not subject to owner rules.
	b.add(MainChain, "-m owner ! --socket-exists -m comment --comment "+quote("ownerwall: no socket, no owner")+" -j RETURN")
	if rs.Stateful {
		// Replies pass at once, except what a serve rule must see first: a
		// listener's SYN-ACK, and UDP sent from a served port.
		c := " -m comment --comment " + quote(commentReplies) + " -j RETURN"
		switch {
		case serveTCP && serveUDP:
			// Neither TCP nor UDP: a rule has one -p, so the second test
			// is on the connection's protocol. They differ only for ICMP
			// errors about a UDP flow, which the profile's tail accepts as
			// RELATED: no profile rule can match them.
			b.add(MainChain,
				"-p tcp -m tcp ! "+tcpSYNACK+" "+ctReply+c,
				"! -p tcp "+ctReply+" ! --ctproto 17"+c)
		case serveTCP:
			b.add(MainChain,
				"-p tcp -m tcp ! "+tcpSYNACK+" "+ctReply+c,
				"! -p tcp "+ctReply+c)
		case serveUDP:
			b.add(MainChain, "! -p udp "+ctReply+c)
		default:
			b.add(MainChain, ctReply+c)
		}
		if v6 {
			for _, t := range []int{133, 134, 135, 136, 137} { // router/neighbour solicitation/advertisement, redirect
				b.add(MainChain, fmt.Sprintf("-p ipv6-icmp -m icmp6 --icmpv6-type %d -m comment --comment %s -j RETURN", t, quote("ownerwall: neighbour discovery")))
			}
		}
	} else {
		// Mid-connection TCP is neither a new connection nor a SYN-ACK.
		b.add(MainChain, "-p tcp -m tcp "+tcpACK+" -m comment --comment "+quote("ownerwall: established TCP")+" -j RETURN")
	}

	if rs.Outbound == ir.Reject {
		b.add(rejectChain,
			"-p tcp -j REJECT --reject-with tcp-reset",
			"-j REJECT --reject-with "+b.icmpUnreachable())
	}
	if rs.Stateful {
		b.add(noRuleChain, b.tail()...)
	}
	for _, p := range rs.Profiles {
		name := profileChain(p.ID)
		b.add(name)
		for _, bi := range p.Blocks {
			// A block's rules test the same: its first rule stands for
			// all of them, and its counter counts them together.
			block := rs.Blocks[bi]
			b.add(name, b.ruleTexts(&rs.Rules[block.First()], len(block.Rules)-1)...)
		}
		b.add(name, b.tail()...)
	}

	for i, d := range rs.Dispatch {
		ranges := cover(d.UIDs)
		if d.Unit == "" {
			t := &tree{b: b, prefix: uidTree + "-", k: fanOut(len(ranges))}
			b.add(MainChain, t.spine(ranges, true)...)
			continue
		}
		root := fmt.Sprintf("%s%d", unitTree, i+1)
		b.add(MainChain, fmt.Sprintf("-m cgroup --path %s -m comment --comment %s -g %s",
			quote(controlFree(d.Cgroup)), quote(clip("ownerwall: unit "+sanitize(d.Unit), maxComment)), root))
		b.add(root)
		t := &tree{b: b, prefix: root + "-", k: fanOut(len(ranges))}
		b.add(root, t.spine(ranges, true)...)
	}
	return b.chains
}

// tail ends a profile chain: replies pass (stateful only), then the
// outbound default decides.
func (b *builder) tail() []string {
	if !b.rs.Stateful {
		return nil
	}
	target := "-j RETURN"
	switch b.rs.Outbound {
	case ir.Drop:
		target = "-j DROP"
	case ir.Reject:
		target = "-g " + rejectChain
	}
	return []string{
		ctReply + " -m comment --comment " + quote(commentReplies) + " -j RETURN",
		"-m comment --comment " + quote(commentDefault) + " " + target,
	}
}

func (b *builder) icmpUnreachable() string {
	if b.v6 {
		return "icmp6-port-unreachable"
	}
	return "icmp-port-unreachable"
}

// clause is one protocol alternative of a rule: its protocol and matches
// (canonical order) and whether it only ever sees TCP.
type clause struct {
	text string
	tcp  bool
}

// ruleTexts renders one policy rule as the rules of a profile chain, for
// this family: one per (network or local) x (protocol clause), each preceded
// by its LOG rule when the policy rule logs.
func (b *builder) ruleTexts(r *ir.Rule, more int) []string {
	comment := "-m comment --comment " + quote(ruleComment(r, more))
	var addrs []addrMatch
	var clauses []clause
	m := r.Match
	if r.Dir == ir.Serve {
		addrs = []addrMatch{{}}
		if m.TCP != nil {
			for _, pm := range portMatches(m.TCP, "--sport", "--sports") {
				clauses = append(clauses, tcpClause(tcpSYNACK, pm))
			}
		}
		if m.UDP != nil {
			for _, pm := range portMatches(m.UDP, "--sport", "--sports") {
				clauses = append(clauses, udpClause(pm, ""))
			}
		}
	} else {
		addrs = b.addrMatches(m)
		state := ""
		if b.rs.NewFlowsOnly {
			state = ctNew
		}
		if m.AllProtocols {
			clauses = append(clauses,
				clause{text: "-p tcp -m tcp " + tcpSYN, tcp: true},
				clause{text: join("! -p tcp", state)})
		}
		if m.TCP != nil {
			for _, pm := range portMatches(m.TCP, "--dport", "--dports") {
				clauses = append(clauses, tcpClause(tcpSYN, pm))
			}
		}
		if m.UDP != nil {
			for _, pm := range portMatches(m.UDP, "--dport", "--dports") {
				clauses = append(clauses, udpClause(pm, state))
			}
		}
	}
	var out []string
	for _, addr := range addrs {
		for _, c := range clauses {
			// -d sits before -p in iptables-save's order; match
			// extensions (addrtype) after the protocol's.
			match := join(addr.dst, c.text, addr.ext)
			if r.Log {
				out = append(out, join(match, comment, "-j LOG --log-prefix "+quote(logPrefix(r))+" --log-uid"))
			}
			out = append(out, join(match, comment, b.verdict(r.Action, c.tcp)))
		}
	}
	return out
}

func tcpClause(flags string, ports portMatch) clause {
	text := "-p tcp -m tcp "
	if ports.single != "" {
		text += ports.single + " "
	}
	text += flags
	if ports.multi != "" {
		text += " -m multiport " + ports.multi
	}
	return clause{text: text, tcp: true}
}

func udpClause(ports portMatch, state string) clause {
	text := "-p udp"
	switch {
	case ports.single != "":
		text += " -m udp " + ports.single
	case ports.multi != "":
		text += " -m multiport " + ports.multi
	}
	return clause{text: join(text, state)}
}

// verdict is the target of a policy rule's clause. Reject is rendered in
// place: the clause's protocol is known.
func (b *builder) verdict(a ir.Action, tcp bool) string {
	switch a {
	case ir.Drop:
		return "-j DROP"
	case ir.Reject:
		if tcp {
			return "-j REJECT --reject-with tcp-reset"
		}
		return "-j REJECT --reject-with " + b.icmpUnreachable()
	}
	return "-j RETURN"
}

// addrMatch is one destination alternative: dst goes before the protocol
// (-d), ext after the protocol's matches (-m addrtype).
type addrMatch struct{ dst, ext string }

// addrMatches lists the destinations of a `to` rule in this family: one
// empty match for any host. A rule whose hosts are all networks of the
// other family yields none.
func (b *builder) addrMatches(m ir.Match) []addrMatch {
	if m.AnyHost {
		return []addrMatch{{}}
	}
	var out []addrMatch
	if m.Local {
		out = append(out, addrMatch{ext: "-m addrtype --dst-type LOCAL"})
	}
	for _, p := range m.Nets {
		if p.Addr().Is4() == b.v6 {
			continue
		}
		out = append(out, addrMatch{dst: "-d " + netString(p)})
	}
	return out
}

// netString prints a prefix as iptables-save does: always with a length.
func netString(p netip.Prefix) string {
	p = p.Masked()
	return p.String()
}

// portMatch is one port clause: a single --dport/--sport (one port or one
// range) or a multiport list.
type portMatch struct{ single, multi string }

// portMatches splits a port set into clauses: nothing for any port, one
// --dport for a single port or range, else multiport lists of at most 15
// ports (a range counts two).
func portMatches(p *ir.Ports, single, multi string) []portMatch {
	if p.Any {
		return []portMatch{{}}
	}
	item := func(r ir.PortRange) string {
		if r.Lo == r.Hi {
			return fmt.Sprint(r.Lo)
		}
		return fmt.Sprintf("%d:%d", r.Lo, r.Hi)
	}
	if len(p.Ranges) == 1 {
		return []portMatch{{single: single + " " + item(p.Ranges[0])}}
	}
	var out []portMatch
	var items []string
	slots := 0
	flush := func() {
		if len(items) == 0 {
			return
		}
		if len(items) == 1 {
			out = append(out, portMatch{single: single + " " + items[0]})
		} else {
			out = append(out, portMatch{multi: multi + " " + strings.Join(items, ",")})
		}
		items, slots = nil, 0
	}
	for _, r := range p.Ranges {
		n := 1
		if r.Lo != r.Hi {
			n = 2
		}
		if slots+n > maxMultiport {
			flush()
		}
		items = append(items, item(r))
		slots += n
	}
	flush()
	return out
}

// tree renders a uid dispatch as a balanced tree of chains: binary up to
// 2^maxTreeDepth uid ranges, wider beyond (k).
type tree struct {
	b      *builder
	prefix string
	next   int
	k      int // each rule of a chain takes 1/k of what is left
}

// maxTreeDepth bounds how deeply the uid tree's chains nest. nf_tables
// (iptables-nft) refuses a ruleset whose jumps and gotos nest 16 deep
// from the base chain (NFT_JUMP_STACK_SIZE: "RULE_INSERT failed (Too many
// links)"), and OWNERWALL, a unit's tree root and the profile chain come
// on top of the tree. A binary tree reached that at about 60,000 uid
// ranges (30,000 accounts spread over the uid space): measured.
const maxTreeDepth = 10

// fanOut is the smallest k that keeps a tree of n ranges within
// maxTreeDepth: 2 (binary) up to 2^maxTreeDepth ranges.
func fanOut(n int) int {
	k := 2
	for treeDepth(n, k) > maxTreeDepth {
		k++
	}
	return k
}

// treeDepth is how deeply spine nests chains for n ranges: the first
// rule's part (n/k ranges) is the largest to get a chain of its own.
func treeDepth(n, k int) int {
	d := 0
	for n/k > 1 {
		n /= k
		d++
	}
	return d
}

// spine returns the rules of the chain for ranges (a full, ordered cover
// of a uid interval): the right spine of the subtree inlined, one rule per
// level, each left subtree in a chain of its own. A packet evaluates one
// rule per level: in a binary tree (k = 2) at most ceil(log2 n) + 1 rules
// from the root to its leaf; with k > 2, each rule takes 1/k of the ranges
// left, so chains nest log_k(n) deep and a packet passes about
// log_(k/(k-1))(n) rules.
// root: the chain's last leaf is conditional too (the packet's uid is not
// known to be in it: sockets without a file have no uid), and a final
// RETURN is left out, since falling off the chain returns.
func (t *tree) spine(ranges []ir.UIDRange, root bool) []string {
	var out []string
	for len(ranges) > 1 {
		mid := max(1, len(ranges)/t.k)
		left := ranges[:mid]
		lo, hi := left[0].Lo, left[len(left)-1].Hi
		var target string
		if len(left) == 1 {
			target = t.b.leaf(left[0].Profile)
		} else {
			t.next++
			name := fmt.Sprintf("%s%d", t.prefix, t.next)
			t.b.add(name)
			t.b.add(name, t.spine(left, false)...)
			target = "-g " + name
		}
		out = append(out, uidMatch(lo, hi)+" "+target)
		ranges = ranges[mid:]
	}
	if len(ranges) == 0 {
		return out
	}
	last := ranges[0]
	target := t.b.leaf(last.Profile)
	if target == "-j RETURN" {
		return out
	}
	if !root {
		return append(out, target)
	}
	if last.Lo > maxSocketUID {
		return out
	}
	return append(out, uidMatch(last.Lo, min(last.Hi, maxSocketUID))+" "+target)
}

// leaf is where a uid range's packets go.
func (b *builder) leaf(profile int) string {
	switch {
	case profile >= 0:
		return "-g " + profileChain(profile)
	case b.rs.Stateful:
		return "-g " + noRuleChain
	}
	return "-j RETURN" // no rule, outbound accept: leave ownerwall
}

func uidMatch(lo, hi uint32) string {
	if lo == hi {
		return fmt.Sprintf("-m owner --uid-owner %d", lo)
	}
	return fmt.Sprintf("-m owner --uid-owner %d-%d", lo, hi)
}

// cover returns the dispatch's ranges sorted, with the gaps of the uid
// space filled with "no rule" (-1) and neighbours of one profile merged: a
// full cover of 0..MaxUID, so that the tree's tests can be exact.
func cover(in []ir.UIDRange) []ir.UIDRange {
	s := append([]ir.UIDRange(nil), in...)
	sort.Slice(s, func(i, j int) bool { return s[i].Lo < s[j].Lo })
	var out []ir.UIDRange
	put := func(r ir.UIDRange) {
		if n := len(out); n > 0 && out[n-1].Profile == r.Profile && uint64(out[n-1].Hi)+1 == uint64(r.Lo) {
			out[n-1].Hi = r.Hi
			return
		}
		out = append(out, r)
	}
	next := uint64(0)
	for _, r := range s {
		if uint64(r.Hi) < next || r.Hi < r.Lo {
			continue // overlaps what is covered already: the first wins, as in ProfileOf's search
		}
		lo := max(uint64(r.Lo), next)
		if lo > next {
			put(ir.UIDRange{Lo: uint32(next), Hi: uint32(lo - 1), Profile: -1})
		}
		put(ir.UIDRange{Lo: uint32(lo), Hi: r.Hi, Profile: r.Profile})
		next = uint64(r.Hi) + 1
	}
	if next <= uint64(ir.MaxUID) {
		put(ir.UIDRange{Lo: uint32(next), Hi: ir.MaxUID, Profile: -1})
	}
	return out
}

func profileChain(id int) string { return fmt.Sprintf("OWNERWALL-P%d", id+1) }

// ruleComment attributes an iptables rule to its policy rule; status sums
// the counters of the rules that carry it. A block of more rules like it
// is counted under its first.
func ruleComment(r *ir.Rule, more int) string {
	suffix := ""
	if more > 0 {
		suffix = fmt.Sprintf(" (and %d more rules like it)", more)
	}
	return clip(fmt.Sprintf("ownerwall rule %d: %s", r.Index, sanitize(r.Name)), maxComment-len(suffix)) + suffix
}

// logPrefix is "ownerwall rule N NAME: ", NAME cut to fit xt_LOG's 29 bytes.
func logPrefix(r *ir.Rule) string {
	head := fmt.Sprintf("ownerwall rule %d ", r.Index)
	name := strings.TrimSpace(clip(sanitize(r.Name), maxLogPrefix-len(head)-2))
	if name == "" {
		return clip(strings.TrimSpace(head)+": ", maxLogPrefix)
	}
	return clip(head+name+": ", maxLogPrefix)
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// sanitize keeps free text (names) plain: no quotes, backslashes or
// control characters, as the nft backend does.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' || r == 0x7f || r == utf8.RuneError {
			return '_'
		}
		return r
	}, s)
}

// controlFree replaces only control characters (paths keep their
// backslashes and quotes, which quote escapes).
func controlFree(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// quote is xtables_save_string: bare when only [A-Za-z0-9_-], else in
// double quotes with " \ ' escaped. iptables-restore reads both back.
func quote(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
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

// state is what iptables-save shows of ownerwall in one family: its chains
// in order, their rules, and how many `-A OUTPUT -j OWNERWALL` jumps exist.
type state struct {
	chains []chain
	jumps  int
}

func desiredState(chains []chain) state { return state{chains: chains, jumps: 1} }

func (s state) names() map[string]bool {
	m := make(map[string]bool, len(s.chains))
	for _, c := range s.chains {
		m[c.name] = true
	}
	return m
}

// transition is the restore input (for --noflush) that turns ownerwall's
// part of the filter table from cur into want, in one transaction: every
// chain of either is declared (an existing chain is flushed), want's rules
// are added, the jump is inserted (or duplicates removed), and the chains
// want no longer has are deleted. Built-in chains are never declared, so
// their policies and other rules stay as they are.
func transition(cur, want state) string {
	var b strings.Builder
	b.WriteString("*filter\n")
	wanted := want.names()
	for _, c := range want.chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c.name)
	}
	var stale []string
	for _, c := range cur.chains {
		if !wanted[c.name] {
			stale = append(stale, c.name)
			fmt.Fprintf(&b, ":%s - [0:0]\n", c.name)
		}
	}
	for _, c := range want.chains {
		for _, r := range c.rules {
			fmt.Fprintf(&b, "-A %s %s\n", c.name, r)
		}
	}
	switch {
	case want.jumps == 0 || cur.jumps > 1:
		// Flush, or duplicates: -D deletes the first match (the top one),
		// so delete every jump and insert one at the top again.
		for range cur.jumps {
			b.WriteString("-D OUTPUT -j " + MainChain + "\n")
		}
		if want.jumps > 0 {
			b.WriteString("-I OUTPUT 1 -j " + MainChain + "\n")
		}
	case cur.jumps == 0:
		b.WriteString("-I OUTPUT 1 -j " + MainChain + "\n")
	}
	for _, name := range stale {
		fmt.Fprintf(&b, "-X %s\n", name)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
