package differential

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/explain"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// compilePolicy parses and compiles YAML against the world's accounts and
// host names, exactly as `ownerwall apply` in the lab resolves them.
func compilePolicy(name, yaml string) (*ir.Ruleset, error) {
	p, err := policy.Parse(name, []byte(yaml))
	if err != nil {
		return nil, err
	}
	st, err := ident.NewStatic(passwd, group)
	if err != nil {
		return nil, err
	}
	st.HostAddrs = hostNames
	return compile.Compile(context.Background(), p, compile.Env{Dir: st, Units: st, Hosts: st})
}

// seen is what the client of an attempt observes when explain's verdict v
// decides one of the attempt's packets (docs/policy.md, "Actions"):
//
//   - dir to, the client's own SYN or datagram: reject is "reject" (a TCP
//     reset, or ICMP port unreachable reported on the UDP socket); drop is
//     "drop" (TCP times out; a dropped local UDP send fails with EPERM,
//     which the probe also reports as drop).
//   - dir serve, the listener's SYN-ACK or UDP answer: drop is "drop";
//     reject of TCP is "reject" on nft (the SYN-ACK is rewritten into
//     RST|ACK) but "drop" on iptables (REJECT sends its reset to the local
//     listener: the documented difference of the iptables backend); reject
//     of UDP is "drop" (the ICMP error goes to the local server, the client
//     hears nothing).
//
// accept lets the packet pass: what the client then sees depends on the
// rest of the exchange, which predict follows.
func seen(backend string, dir ir.Direction, proto string, v ir.Action) string {
	switch {
	case v == ir.Accept:
		return "accept"
	case v == ir.Drop:
		return "drop"
	case dir == ir.To:
		return "reject"
	case proto == "tcp" && backend == "nft":
		return "reject"
	default: // serve reject: TCP on iptables, and UDP
		return "drop"
	}
}

// prediction is what explain says an attempt will observe, and why.
type prediction struct {
	Expect string
	To     *explain.Result // the client's packet (local clients only)
	Serve  *explain.Result // the local listener's answer, when reached
	Note   string          // what decides beyond explain: no listener, strudel answers
}

// predict follows an attempt's packets through explain. A local client's
// SYN or datagram is a `to` query for its uid; if it passes and the
// destination is this host, the local listener's SYN-ACK or UDP answer is a
// `serve` query for the listener's owner on the listener's port. An
// inbound attempt from strudel is only that serve query. Packets explain
// is not asked about (strudel's own answers, the kernel's resets and ICMP
// errors for closed ports) pass: nothing of ownerwall filters input, and
// packets without a socket are never subject to owner rules.
func predict(rs *ir.Ruleset, a attempt, backend string) prediction {
	return predictWith(rs, a, backend, false)
}

// predictWith is predict; with answerAsTo, a UDP answer in a stateless
// policy is asked about as what it is in the kernel (see answerQuery)
// instead of as explain's serve query.
func predictWith(rs *ir.Ruleset, a attempt, backend string, answerAsTo bool) prediction {
	var p prediction
	addr := netip.MustParseAddr(a.Addr).Unmap()
	if a.Lab.From != "remote" {
		uid := uint32(a.Lab.UID)
		if a.Lab.UID == 0 {
			uid = accountUIDs[a.Lab.User]
		}
		q := explain.Query{UID: uid, Dir: ir.To, Addr: addr, Port: uint16(a.Port), Proto: a.Proto, SrcPort: uint16(a.Lab.SrcPort)}
		res := explain.Evaluate(rs, q, isLocal)
		p.To = &res
		if res.Verdict != ir.Accept {
			p.Expect = seen(backend, ir.To, a.Proto, res.Verdict)
			return p
		}
		if !isLocal(addr) {
			if remoteListens(a.Proto, a.Port) {
				p.Expect, p.Note = "accept", "strudel listens"
			} else {
				p.Expect, p.Note = "reject", "strudel does not listen: reset or port unreachable"
			}
			return p
		}
	}
	owner, ok := localOwner(a.Proto, a.Port)
	if !ok {
		p.Expect, p.Note = "reject", "no local listener: the kernel's reset or port unreachable"
		return p
	}
	p.Note = fmt.Sprintf("local listener owned by uid %d", owner)
	q := explain.Query{UID: owner, Dir: ir.Serve, Port: uint16(a.Port), Proto: a.Proto}
	if answerAsTo && a.Proto == "udp" && !rs.Stateful {
		q = answerQuery(a, owner)
		p.Note += fmt.Sprintf("; its answer asked as a to query: to %s:%d from port %d", q.Addr, q.Port, q.SrcPort)
	}
	res := explain.Evaluate(rs, q, isLocal)
	p.Serve = &res
	p.Expect = seen(backend, ir.Serve, a.Proto, res.Verdict)
	return p
}

func (p prediction) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "explain predicts %s", p.Expect)
	if p.Note != "" {
		fmt.Fprintf(&b, " (%s)", p.Note)
	}
	for _, r := range []struct {
		what string
		res  *explain.Result
	}{{"to (the client's packet)", p.To}, {"serve (the listener's answer)", p.Serve}} {
		if r.res == nil {
			continue
		}
		by := "the outbound default"
		if r.res.Rule != nil {
			by = fmt.Sprintf("rule %d %q", r.res.Position, *r.res.Rule)
		}
		fmt.Fprintf(&b, "\n      %s: %s by %s, profile %d", r.what, r.res.Verdict, by, r.res.Profile)
		for _, why := range r.res.Reasons {
			fmt.Fprintf(&b, "\n        - %s", why)
		}
	}
	return b.String()
}

// ephemeralPort stands for the client's source port, which the kernel
// picks (32768-60999): no generated port list or range reaches it, so only
// "any" and rules on every protocol match it.
const ephemeralPort = 40000

// answerQuery is a UDP listener's answer as the kernel sees it: a datagram
// owned by the listener, sent to the client's address and port (ephemeral,
// or the one the attempt sent from) and from the listener's port. docs/policy.md: "A UDP datagram is both
// sent to a port and from one, so both kinds of rule can decide it; the
// first in policy order wins." explain's `to` query with SrcPort asks
// exactly that (its serve query does not know the client's address). Only
// for stateless policies: with conntrack, `to` rules see new flows only,
// and an answer is not one.
func answerQuery(a attempt, owner uint32) explain.Query {
	port := uint16(ephemeralPort)
	if a.Lab.SrcPort != 0 {
		port = uint16(a.Lab.SrcPort)
	}
	return explain.Query{UID: owner, Dir: ir.To, Addr: clientAddr(a), Port: port, Proto: "udp", SrcPort: uint16(a.Port)}
}

// clientAddr is the address a listener answers to: strudel's in the
// attempt's family, or the source address this host picks for the local
// destination (127.0.0.1 for all of 127.0.0.0/8).
func clientAddr(a attempt) netip.Addr {
	dst := netip.MustParseAddr(a.Addr).Unmap()
	switch {
	case a.Lab.From == "remote" && dst.Is4():
		return netip.MustParseAddr(lab.RemoteV4)
	case a.Lab.From == "remote":
		return netip.MustParseAddr(lab.RemoteV6)
	case netip.MustParsePrefix("127.0.0.0/8").Contains(dst):
		return netip.MustParseAddr("127.0.0.1")
	}
	return dst
}

// Mismatch classes. classUDPAnswer: explain's serve query said the UDP
// listener's answer passes (or not), the kernel did otherwise, and what
// the kernel did is what the docs say when the answer is asked about as
// the datagram it is (answerQuery): a `to` rule matched the answer's
// destination. classUnexplained: anything else.
const (
	classUDPAnswer   = "udp-answer"
	classUnexplained = "unexplained"
)

// judge compares an observation with explain's prediction and, when they
// differ, names the class of the mismatch ("" when they agree).
func judge(rs *ir.Ruleset, a attempt, backend, observed string) (prediction, string) {
	p := predict(rs, a, backend)
	switch {
	case observed == p.Expect:
		return p, ""
	case observed == predictWith(rs, a, backend, true).Expect:
		return p, classUDPAnswer
	}
	return p, classUnexplained
}
