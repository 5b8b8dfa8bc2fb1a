package differential

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// The reference model: what a generated policy means, read straight from
// docs/policy.md, without the compiler, the IR or explain. explain and the
// backends share the IR, so a compile mistake (a group member left out, a
// wrong profile) would make them agree with each other and both be wrong;
// the model catches that. It is deliberately naive: every rule, in order,
// for every packet.

type refAccount struct {
	name     string
	uid, gid uint32
}

type refGroup struct {
	name    string
	gid     uint32
	members []string
}

func refWorld() ([]refAccount, []refGroup) {
	var accts []refAccount
	for _, l := range strings.Split(strings.TrimSpace(passwd), "\n") {
		f := strings.Split(l, ":")
		uid, _ := strconv.ParseUint(f[2], 10, 32)
		gid, _ := strconv.ParseUint(f[3], 10, 32)
		accts = append(accts, refAccount{f[0], uint32(uid), uint32(gid)})
	}
	var groups []refGroup
	for _, l := range strings.Split(strings.TrimSpace(group), "\n") {
		f := strings.Split(l, ":")
		gid, _ := strconv.ParseUint(f[2], 10, 32)
		var m []string
		if f[3] != "" {
			m = strings.Split(f[3], ",")
		}
		groups = append(groups, refGroup{f[0], uint32(gid), m})
	}
	return accts, groups
}

var refAccounts, refGroups = refWorld()

// refInGroup: the accounts whose primary gid is gid, and those the group
// entry lists. A uid without an account is in no group.
func refInGroup(uid, gid uint32, listed []string) bool {
	for _, a := range refAccounts {
		if a.uid != uid {
			continue
		}
		if a.gid == gid {
			return true
		}
		for _, m := range listed {
			if m == a.name {
				return true
			}
		}
	}
	return false
}

func refPrincipal(ref string, uid uint32) bool {
	kind, rest, ok := strings.Cut(ref, ":")
	if !ok {
		if ref == "everyone" {
			return true
		}
		kind, rest = "user", ref
	}
	switch kind {
	case "user":
		for _, a := range refAccounts {
			if a.name == rest {
				return a.uid == uid
			}
		}
		panic("reference: no account " + rest)
	case "uid":
		lo, hi, isRange := strings.Cut(rest, "-")
		if !isRange {
			hi = lo
		}
		l, _ := strconv.ParseUint(lo, 10, 32)
		h, _ := strconv.ParseUint(hi, 10, 32)
		return uint64(uid) >= l && uint64(uid) <= h
	case "group", "gid":
		for _, g := range refGroups {
			if kind == "group" && g.name == rest || kind == "gid" && strconv.Itoa(int(g.gid)) == rest {
				return refInGroup(uid, g.gid, g.members)
			}
		}
		if kind == "gid" { // no group entry: the accounts whose primary gid it is
			n, _ := strconv.ParseUint(rest, 10, 32)
			return refInGroup(uid, uint32(n), nil)
		}
		panic("reference: no group " + rest)
	}
	panic("reference: principal " + ref)
}

func refApplies(r genRule, uid uint32) bool {
	who := r.Who
	if who == nil {
		who = []string{"everyone"}
	}
	in := false
	for _, p := range who {
		in = in || refPrincipal(p, uid)
	}
	for _, p := range r.Except {
		if refPrincipal(p, uid) {
			return false
		}
	}
	return in
}

func refHost(h string, a netip.Addr) bool {
	switch h {
	case "local":
		return isLocal(a)
	case "any":
		return true
	}
	if addrs, ok := hostNames[h]; ok {
		for _, x := range addrs {
			if x.Unmap() == a {
				return true
			}
		}
		return false
	}
	if strings.Contains(h, "/") {
		p := netip.MustParsePrefix(h)
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:a.b.c.d/n is IPv4
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked().Contains(a)
	}
	return netip.MustParseAddr(h).Unmap() == a
}

func refPorts(p *genPorts, port int) bool {
	if p == nil {
		return false
	}
	if p.Any {
		return true
	}
	for _, it := range p.Items {
		lo, hi, isRange := strings.Cut(it, "-")
		if !isRange {
			hi = lo
		}
		l, _ := strconv.Atoi(lo)
		h, _ := strconv.Atoi(hi)
		if port >= l && port <= h {
			return true
		}
	}
	return false
}

func refDest(p genPolicy, r genRule) genDest {
	if r.Service == "" {
		return r.Dest
	}
	for _, s := range p.Services {
		if s.Name == r.Service {
			return s.Dest
		}
	}
	panic("reference: no service " + r.Service)
}

// refPacket is one packet a local socket sends.
type refPacket struct {
	uid   uint32
	proto string
	dst   netip.Addr
	dport int
	sport int // 0: an ephemeral port no rule names
	// answer: a listener's SYN-ACK or UDP answer. It is a reply: `to`
	// rules never see it (TCP: not a SYN; other protocols: not the first
	// packet of a flow), and when no serve rule decides, it passes.
	answer bool
}

// refDecide: the first rule whose principals and destination match the
// packet decides; none decides: accept for answers, else the outbound
// default (docs/policy.md, "Which packets a rule sees"):
//   - to rules see a TCP connection attempt (SYN) to their host and port,
//     the first datagram of each UDP flow to their host and port, the
//     first packet of each flow to their host when they give no protocol;
//   - serve rules see a listener's SYN-ACK from their TCP port, and every
//     UDP datagram sent from their UDP port.
func refDecide(p genPolicy, pk refPacket) (ir.Action, string) {
	for i, r := range p.Rules {
		if !refApplies(r, pk.uid) {
			continue
		}
		d := refDest(p, r)
		match := false
		switch {
		case r.Serve && pk.proto == "tcp":
			match = pk.answer && refPorts(d.TCP, pk.sport)
		case r.Serve && pk.proto == "udp":
			match = refPorts(d.UDP, pk.sport)
		case !pk.answer:
			hostOK := d.HostAny || d.Hosts == nil
			for _, h := range d.Hosts {
				hostOK = hostOK || refHost(h, pk.dst)
			}
			all := d.TCP == nil && d.UDP == nil
			match = hostOK && (all || pk.proto == "tcp" && refPorts(d.TCP, pk.dport) || pk.proto == "udp" && refPorts(d.UDP, pk.dport))
		}
		if match {
			return ir.Action(r.Action), fmt.Sprintf("rule %d", i+1)
		}
	}
	if pk.answer || p.Outbound == "" || p.Outbound == "accept" {
		return ir.Accept, "no rule"
	}
	return ir.Action(p.Outbound), "the outbound default"
}

// refPredict is what the client of an attempt observes, by the reference
// model: its own packet, then the listener's answer, each mapped by seen().
func refPredict(p genPolicy, a attempt, backend string) (string, string) {
	addr := netip.MustParseAddr(a.Addr).Unmap()
	var why []string
	if a.Lab.From != "remote" {
		uid := uint32(a.Lab.UID)
		if a.Lab.UID == 0 {
			uid = accountUIDs[a.Lab.User]
		}
		v, by := refDecide(p, refPacket{uid: uid, proto: a.Proto, dst: addr, dport: a.Port, sport: a.Lab.SrcPort})
		why = append(why, fmt.Sprintf("client's packet: %s by %s", v, by))
		if v != ir.Accept {
			return seen(backend, ir.To, a.Proto, v), strings.Join(why, "; ")
		}
		if !isLocal(addr) {
			if remoteListens(a.Proto, a.Port) {
				return "accept", strings.Join(why, "; ")
			}
			return "reject", strings.Join(why, "; ")
		}
	}
	owner, ok := localOwner(a.Proto, a.Port)
	if !ok {
		return "reject", strings.Join(append(why, "no local listener"), "; ")
	}
	v, by := refDecide(p, refPacket{uid: owner, proto: a.Proto, sport: a.Port, answer: true})
	why = append(why, fmt.Sprintf("listener's answer (uid %d): %s by %s", owner, v, by))
	return seen(backend, ir.Serve, a.Proto, v), strings.Join(why, "; ")
}

// TestExplainMatchesReferenceModel: explain's predictions agree with the
// reference model on every generated policy and attempt. No kernel.
func TestExplainMatchesReferenceModel(t *testing.T) {
	base := baseSeed()
	n := 2000
	if testing.Short() {
		n = 300
	}
	bad := 0
	for i := range n {
		tc, err := genCase(base, i, *attemptsFlag)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := compilePolicy(policyName(i), tc.Policy.yaml())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range tc.Attempts {
			for _, k := range []string{"nft", "iptables"} {
				want, why := refPredict(tc.Policy, a, k)
				if got := predict(rs, a, k); got.Expect != want {
					bad++
					if bad <= 5 {
						t.Errorf("seed %d policy %d (%s): %s: explain says %s, the reference model %s (%s)\n%s\n%s",
							base, i, k, a, got.Expect, want, why, got, indent(tc.Policy.yaml()))
					}
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("seed %d: %d disagreements between explain and the reference model", base, bad)
	}
}
