package explain

import (
	"net/netip"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ir"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestFirstMatchWins: rules are read top to bottom and the first whose
// destination and principals match decides.
func TestFirstMatchWins(t *testing.T) {
	rs := build(t, `version: 1
rules:
  - name: alice may browse
    to: {tcp: 80}
    who: [alice]
    action: accept
  - name: nobody browses
    to: {tcp: [80, 443]}
    action: reject
  - name: smtp is refused
    to: {tcp: 25}
    action: reject
  - name: too late for alice
    to: {tcp: 25}
    who: [alice]
    action: accept
  - name: the rest of the web
    to: {}
    who: [alice]
    action: drop
`)
	cases := []struct {
		name string
		q    Query
		want expect
	}{
		{"an earlier accept wins over a later reject", to(uidAlice, "198.51.100.1", 80, "tcp"), expect{ir.Accept, "alice may browse", 1, nil}},
		{"others get the reject", to(uidBob, "198.51.100.1", 80, "tcp"), expect{ir.Reject, "nobody browses", 2, nil}},
		{"alice's 443 falls to rule 2", to(uidAlice, "198.51.100.1", 443, "tcp"), expect{ir.Reject, "nobody browses", 2, nil}},
		{"a later accept does not undo an earlier reject", to(uidAlice, "198.51.100.1", 25, "tcp"), expect{ir.Reject, "smtp is refused", 3, nil}},
		{"the catch-all comes last", to(uidAlice, "198.51.100.1", 22, "tcp"), expect{ir.Drop, "the rest of the web", 5, nil}},
		{"the catch-all takes every protocol", to(uidAlice, "198.51.100.1", 0, "icmp"), expect{ir.Drop, "the rest of the web", 5, []string{"the rule covers every protocol"}}},
		{"bob has no catch-all", to(uidBob, "198.51.100.1", 22, "tcp"), expect{ir.Accept, "", 0, nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check(t, Evaluate(rs, c.q, hostAddrs), c.want)
		})
	}
}
