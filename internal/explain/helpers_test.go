package explain

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// The seed world: admin7 and root are in wheel only as supplementary
// members.
const (
	seedPasswd = `root:x:0:0:root:/root:/bin/sh
plebian:x:1000:1000:Plebian User:/home/plebian:/bin/sh
admin7:x:1001:1001:Admin Seven:/home/admin7:/bin/sh
alice:x:1002:100::/home/alice:/bin/sh
bob:x:1003:100::/home/bob:/bin/sh
carol:x:1004:100::/home/carol:/bin/sh
dave:x:1005:100::/home/dave:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`
	seedGroup = `root:x:0:
wheel:x:10:root,admin7
users:x:100:
plebian:x:1000:
admin7:x:1001:
nogroup:x:65534:
`
	seedPolicy = `version: 1
outbound: accept

services:
  telnet-tunnel: {host: local, tcp: 992}
  rsync-tunnel:  {host: local, tcp: 273}

rules:
  - name: telnet tunnel is root's
    to: telnet-tunnel
    except: [root]
    action: reject

  - name: rsync tunnel is for wheel
    to: rsync-tunnel
    except: ["group:wheel"]
    action: reject

  - name: no web for ordinary users
    to: {tcp: [80, 443]}
    except: [root]
    action: drop

  - name: only root and wheel accept inbound TCP
    serve: {tcp: any}
    except: [root, "group:wheel"]
    action: reject
`
)

const (
	uidRoot    = 0
	uidPlebian = 1000
	uidAdmin7  = 1001
	uidAlice   = 1002
	uidBob     = 1003
	uidCarol   = 1004
	uidDave    = 1005
)

func build(t *testing.T, src string) *ir.Ruleset {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	st, err := ident.NewStatic(seedPasswd, seedGroup)
	if err != nil {
		t.Fatal(err)
	}
	st.HostAddrs = map[string][]netip.Addr{"db.example": {netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("::ffff:192.0.2.78")}}
	st.UnitPaths = map[string]string{"stunnel.service": "system.slice/stunnel.service"}
	rs, err := compile.Compile(context.Background(), p, compile.Env{Dir: st, Units: st, Hosts: st})
	if err != nil {
		t.Fatalf("compile:\n%v", err)
	}
	return rs
}

// hostAddrs is this test host: loopback and one address per family.
var hostAddrs LocalFunc = func(a netip.Addr) bool {
	return netip.MustParsePrefix("127.0.0.0/8").Contains(a) || a == netip.IPv6Loopback() ||
		a == netip.MustParseAddr("192.0.2.1") || a == netip.MustParseAddr("2001:db8::1")
}

func to(uid uint32, addr string, port uint16, proto string) Query {
	return Query{UID: uid, Dir: ir.To, Addr: netip.MustParseAddr(addr), Port: port, Proto: proto}
}

func serve(uid uint32, port uint16, proto string) Query {
	return Query{UID: uid, Dir: ir.Serve, Port: port, Proto: proto}
}

// expect is the outcome of one query: the verdict, the deciding rule's
// name and position ("" and 0: the outbound default), and reasons that
// must all be among the result's.
type expect struct {
	verdict  ir.Action
	rule     string
	position int
	reasons  []string
}

func check(t *testing.T, res Result, want expect) {
	t.Helper()
	if res.Verdict != want.verdict {
		t.Errorf("verdict = %s, want %s (reasons: %q)", res.Verdict, want.verdict, res.Reasons)
	}
	switch {
	case want.rule == "" && res.Rule != nil:
		t.Errorf("decided by rule %q, want the outbound default (Rule == nil)", *res.Rule)
	case want.rule != "" && res.Rule == nil:
		t.Errorf("decided by the outbound default, want rule %q", want.rule)
	case want.rule != "" && *res.Rule != want.rule:
		t.Errorf("decided by rule %q, want %q", *res.Rule, want.rule)
	}
	if res.Position != want.position {
		t.Errorf("position = %d, want %d", res.Position, want.position)
	}
	for _, r := range want.reasons {
		if !hasReason(res, r) {
			t.Errorf("no reason %q in %q", r, res.Reasons)
		}
	}
}

// matches reports whether res is want, without failing.
func matches(res Result, want expect) bool {
	if res.Verdict != want.verdict || res.Position != want.position || (res.Rule == nil) != (want.rule == "") {
		return false
	}
	if res.Rule != nil && *res.Rule != want.rule {
		return false
	}
	for _, r := range want.reasons {
		if !hasReason(res, r) {
			return false
		}
	}
	return true
}

// checkKnown checks res, skipping the test while it shows the known bug.
func checkKnown(t *testing.T, res Result, want expect, bug string) {
	t.Helper()
	if bug != "" && !matches(res, want) {
		fixedBug(t, bug)
	}
	check(t, res, want)
}

func hasReason(res Result, r string) bool {
	for _, got := range res.Reasons {
		if got == r || strings.Contains(got, r) {
			return true
		}
	}
	return false
}

// fixedBug fails the test: the behaviour it checks was a bug, since
// fixed; seeing it again is a regression.
func fixedBug(t *testing.T, bug string) {
	t.Helper()
	t.Errorf("a fixed bug is back: %s", bug)
}
