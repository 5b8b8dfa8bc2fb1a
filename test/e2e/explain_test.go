package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestExplainCLI: explain answers from the policy file and, with --live,
// from what is loaded; its verdicts are what the kernel does in the same
// world (the attempts), and it says why.
func TestExplainCLI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		if b.name != "nft" {
			t.Skip("explain reads the IR, not the backend: once is enough")
		}
		sc, _ := lab.Seed()
		sc.Attempts = nil
		sc.PolicyName = "policy.yaml"
		b.use(&sc)
		sc.AfterApply = [][]string{
			self("explain", "-f", "$DIR/policy.yaml", "--user", "plebian", "--to", "127.0.0.2:992/tcp"),
			self("explain", "-f", "$DIR/policy.yaml", "--user", "admin7", "--to", "127.0.0.1:273/tcp", "--json"),
			self("explain", "--live", "--uid", "1000", "--to", "[2001:db8:18::2]:443/tcp", "--json"),
			self("explain", "--live", "--user", "plebian", "--serve", "8001/tcp", "--json"),
			self("explain", "--live", "--user", "nosuch", "--to", "127.0.0.1:1/tcp"),
			self("explain", "--live", "--user", "root", "--to", "not-an-address"),
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("", "plebian", "127.0.0.2:992/tcp", "reject"),
			exp("", "admin7", "127.0.0.1:273/tcp", "accept"),
			exp("", "plebian", "[2001:db8:18::2]:443/tcp", "drop"),
		})
		requireExits(t, rep, 0, 0, 0, 0, 1, 1)
		s := rep.Steps
		for _, want := range []string{"REJECT", `rule 1 "telnet tunnel is root's"`, "127.0.0.2 is an address of this host", "uid 1000 is not in except: root"} {
			if !strings.Contains(s[0].Output, want) {
				t.Errorf("explain text lacks %q:\n%s", want, s[0].Output)
			}
		}
		type result struct {
			Verdict  string
			Rule     *string
			Position int
			Reasons  []string
		}
		parse := func(i int) result {
			var r result
			if err := json.Unmarshal([]byte(s[i].Output), &r); err != nil {
				t.Fatalf("step %d: %v: %s", i, err, s[i].Output)
			}
			return r
		}
		if r := parse(1); r.Verdict != "accept" || r.Rule != nil || !strings.Contains(strings.Join(r.Reasons, "\n"), "admin7 is a supplementary member of wheel") {
			t.Errorf("admin7 at 273: %+v", r)
		}
		if r := parse(2); r.Verdict != "drop" || r.Rule == nil || *r.Rule != "no web for ordinary users" || r.Position != 3 {
			t.Errorf("plebian at strudel 443 (--live): %+v", r)
		}
		if r := parse(3); r.Verdict != "reject" || r.Rule == nil || *r.Rule != "only root and wheel accept inbound TCP" {
			t.Errorf("plebian serving 8001 (--live): %+v", r)
		}
		for _, i := range []int{4, 5} {
			if lines := strings.Split(strings.TrimSpace(s[i].Output), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "ownerwall: ") {
				t.Errorf("step %d: want one error line, got %q", i, s[i].Output)
			}
		}
	})
}
