package e2e

import (
	"encoding/json"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestOneRulePerAccount: a rule per account over one service compiles to
// blocks (consecutive rules that test the same packets); first-match still
// holds for every account, a logged rule and an except inside the run
// keep their meaning, and a block is counted once, under its first rule.
func TestOneRulePerAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
services:
  tunnel: {host: local, tcp: 992}
rules:
  - {name: plebian's tunnel, to: tunnel, who: [plebian], action: accept}
  - {name: admin7's tunnel, to: tunnel, who: [admin7], action: accept}
  - {name: the rangers' tunnel, to: tunnel, who: ["uid:2000-2999"], except: [ranger2], action: accept}
  - {name: wheelie's tunnel, to: tunnel, who: [wheelie], action: accept, log: true}
  - {name: nobody at all, to: tunnel, who: [outsider], except: [outsider], action: accept}
  - {name: everyone else, to: tunnel, action: reject}
`)
		b.use(&sc)
		sc.AfterApply = [][]string{{"$SELF", "status", "--json"}}
		bare := func(uid int, expect string) lab.Expectation {
			return lab.Expectation{Attempt: lab.Attempt{Label: "uid without account", UID: uid, To: "127.0.0.1:992/tcp"}, Expect: expect}
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("rule 1", "plebian", "127.0.0.1:992/tcp", "accept"),
			exp("rule 2", "admin7", "[::1]:992/tcp", "accept"),
			exp("rule 3", "ranger", "127.0.0.1:992/tcp", "accept"),
			exp("rule 3's except", "ranger2", "127.0.0.1:992/tcp", "reject"),
			bare(2500, "accept"),
			exp("the logged rule 4", "wheelie", "127.0.0.1:992/tcp", "accept"),
			exp("who minus except is no one", "outsider", "127.0.0.1:992/tcp", "reject"),
			exp("no rule of theirs", "root", "127.0.0.1:992/tcp", "reject"),
			bare(3001, "reject"),
		})
		var st struct {
			Rules []struct {
				Rule int
				Name string
			}
		}
		if err := json.Unmarshal([]byte(rep.Steps[0].Output), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, rep.Steps[0].Output)
		}
		names := map[int]string{}
		for _, r := range st.Rules {
			names[r.Rule] = r.Name
		}
		want := map[int]string{
			1: "plebian's tunnel (and 2 more rules like it)",
			4: "wheelie's tunnel", 5: "nobody at all", 6: "everyone else",
		}
		if b.name != "nft" {
			// iptables counts with its rules' own counters: a rule that
			// applies to no one has no kernel rule, hence no counter.
			delete(want, 5)
		}
		for rule, name := range want {
			if names[rule] != name {
				t.Errorf("status: rule %d counted as %q, want %q (all: %v)", rule, names[rule], name, names)
			}
		}
		for _, rule := range []int{2, 3} {
			if n, ok := names[rule]; ok {
				t.Errorf("status: rule %d has a counter of its own (%q), want it counted with rule 1", rule, n)
			}
		}
	})
}
