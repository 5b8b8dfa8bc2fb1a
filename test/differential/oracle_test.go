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
	res := explain.Evaluate(rs, explain.Query{UID: owner, Dir: ir.Serve, Port: uint16(a.Port), Proto: a.Proto}, isLocal)
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

// Mismatch classes, by what the reference model (reference_test.go: the
// policy's meaning read from docs/policy.md, without the IR) says:
//
//   - classExplain: the kernel did what the docs say, explain did not:
//     explain (or the compiler they share) is wrong;
//   - classKernel: explain agrees with the docs, the kernel does not: a
//     backend renders the policy wrongly (or the lab world misleads);
//   - classUnexplained: all three differ.
const (
	classExplain     = "explain"
	classKernel      = "kernel"
	classUnexplained = "unexplained"
)

// judge compares an observation with explain's prediction and, when they
// differ, names the class of the mismatch ("" when they agree).
func judge(rs *ir.Ruleset, p genPolicy, a attempt, backend, observed string) (prediction, string) {
	pred := predict(rs, a, backend)
	if observed == pred.Expect {
		return pred, ""
	}
	switch ref, _ := refPredict(p, a, backend); ref {
	case observed:
		return pred, classExplain
	case pred.Expect:
		return pred, classKernel
	}
	return pred, classUnexplained
}
