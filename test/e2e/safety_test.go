package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

const tunnelPolicy = `version: 1
rules:
  - {name: telnet tunnel is root's, to: {host: local, tcp: 992}, except: [root], action: reject}
`

// foreignSetup is somebody else's ruleset: another nft table, and rules
// and a chain made with iptables (nf_tables flavour). nft takes each
// command as one argument.
var foreignSetup = [][]string{
	{"nft", "add table inet foreign"},
	{"nft", "add chain inet foreign out { type filter hook output priority 10 ; policy accept ; }"},
	{"nft", "add rule inet foreign out ip daddr 192.0.2.1 counter accept"},
	{"nft", "add rule inet foreign out tcp dport 9999 counter drop"},
	{"iptables", "-A", "OUTPUT", "-d", "192.0.2.2", "-j", "ACCEPT"},
	{"iptables", "-N", "FOREIGN"},
	{"iptables", "-A", "FOREIGN", "-j", "RETURN"},
}

var packetCounts = regexp.MustCompile(`\[\d+:\d+\]`)

// foreignView is everything in a lab listing that is not ownerwall's: the
// foreign nft table, and the iptables-save lines that do not name
// ownerwall's chains (counters zeroed).
func foreignView(ruleset string) string {
	nftPart, savePart, _ := strings.Cut(ruleset, "# iptables-save\n")
	var b strings.Builder
	b.WriteString(tableBlock(nftPart, "inet", "foreign"))
	// An empty table (built-in chains only, no rules) is not a ruleset:
	// iptables creates one when ownerwall loads its IPv6 chains.
	for _, block := range strings.SplitAfter(savePart, "COMMIT\n") {
		var keep []string
		content := false
		for _, l := range strings.Split(block, "\n") {
			if l == "" || strings.HasPrefix(l, "#") || strings.Contains(l, "OWNERWALL") {
				continue
			}
			if strings.HasPrefix(l, "-A ") || strings.HasPrefix(l, ":") && strings.Contains(l, " - [") {
				content = true
			}
			keep = append(keep, packetCounts.ReplaceAllString(l, "[0:0]"))
		}
		if content {
			b.WriteString(strings.Join(keep, "\n") + "\n")
		}
	}
	return b.String()
}

// TestForeignRulesetsUntouched: apply, re-apply and flush touch nothing
// but ownerwall's own table.
func TestForeignRulesetsUntouched(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.Setup = foreignSetup
		sc.Files = map[string]string{"policy2.yaml": strings.Replace(tunnelPolicy, "992", "273", 1)}
		sc.AfterApply = [][]string{
			append([]string{"$SELF", "apply", "-f", "$DIR/policy2.yaml"}, b.args...),
			{"$SELF", "flush"},
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("after flush nothing is guarded", "plebian", "127.0.0.1:992/tcp", "accept"),
		})
		before := foreignView(rep.RulesetBefore)
		if !strings.Contains(before, "table inet foreign") || !strings.Contains(before, "192.0.2.2") || !strings.Contains(before, ":FOREIGN") {
			t.Fatalf("the foreign setup is missing from the ruleset before apply:\n%s", before)
		}
		for _, st := range rep.Steps {
			if st.Exit != 0 {
				t.Fatalf("%v: exit %d: %s", st.Cmd, st.Exit, st.Output)
			}
			if got := foreignView(st.Ruleset); got != before {
				t.Errorf("after %v the foreign ruleset changed:\nbefore:\n%s\nafter:\n%s", st.Cmd, before, got)
			}
		}
		if b.loaded(rep.Ruleset) || strings.Contains(rep.Ruleset, "ownerwall") || strings.Contains(rep.Ruleset, "OWNERWALL") {
			t.Errorf("flush left ownerwall behind:\n%s", rep.Ruleset)
		}
	})
}

// TestInvalidPolicyChangesNothing: a policy that does not parse, names an
// unknown account, group or host, or that the kernel refuses, changes
// nothing: the live ruleset stays exactly what it was, apply exits 1 and
// says where the problem is as FILE:LINE:COL.
func TestInvalidPolicyChangesNothing(t *testing.T) {
	bad := map[string]string{
		"syntax.yaml":  "version: 1\nrules:\n  - name: [unclosed\n",
		"unknown.yaml": "version: 1\nrules:\n  - {to: {tcp: 1}, who: [nosuchuser], action: drop}\n",
		"group.yaml":   "version: 1\nrules:\n  - {to: {tcp: 1}, who: [\"group:nosuch\"], action: drop}\n",
		"host.yaml":    "version: 1\nrules:\n  - {to: {host: no-such-host.invalid, tcp: 1}, action: drop}\n",
		"key.yaml":     "version: 1\nrules:\n  - {to: {tcp: 1}, action: drop, acton: drop}\n",
		"both.yaml":    "version: 1\nrules:\n  - {to: {tcp: 1}, serve: {tcp: 2}, action: drop}\n",
	}
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.Files = bad
		for name := range bad {
			sc.AfterApply = append(sc.AfterApply, append([]string{"$SELF", "apply", "-f", "$DIR/" + name}, b.args...))
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("the first policy still holds", "plebian", "127.0.0.1:992/tcp", "reject"),
			exp("the first policy still holds", "root", "127.0.0.1:992/tcp", "accept"),
		})
		applied := rep.Steps[0].Ruleset // compare against the state after the first bad b.args...
		for _, st := range rep.Steps {
			if st.Exit != 1 {
				t.Errorf("%v: exit %d, want 1: %s", st.Cmd, st.Exit, st.Output)
			}
			lines := strings.Split(strings.TrimSpace(st.Output), "\n")
			pos := regexp.MustCompile(`^/\S+\.yaml:\d+:\d+: \S`)
			if len(lines) != 1 || !pos.MatchString(lines[0]) {
				t.Errorf("%v: want one FILE:LINE:COL: line, got:\n%s", st.Cmd, st.Output)
			}
			if stripCounters(st.Ruleset) != stripCounters(applied) {
				t.Errorf("%v changed the ruleset", st.Cmd)
			}
		}
		// ...and that state is the valid policy's, not empty.
		if !b.loaded(applied) {
			t.Errorf("the valid policy is not loaded:\n%s", applied)
		}
	})
}

// counterRE matches what changes in a listing without a change of the
// ruleset: nft's counters, iptables-save's chain counters, and the time
// stamps of its "# Generated by ... on DATE" and "# Completed on DATE"
// lines (two steps a second apart differed by those alone).
var counterRE = regexp.MustCompile(`packets \d+ bytes \d+|\[\d+:\d+\]|(?m)^# (Generated by|Completed on) .*$`)

func stripCounters(s string) string { return counterRE.ReplaceAllString(s, "") }

// TestReapplyReplacesTheWholeRuleset: a second apply replaces the first
// policy entirely; exactly one ownerwall table exists.
func TestReapplyReplacesTheWholeRuleset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.Files = map[string]string{"second.yaml": `version: 1
rules:
  - {name: rsync tunnel is root's, to: {host: local, tcp: 273}, except: [root], action: drop}
`}
		sc.AfterApply = [][]string{append([]string{"$SELF", "apply", "-f", "$DIR/second.yaml"}, b.args...)}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("first policy gone", "plebian", "127.0.0.1:992/tcp", "accept"),
			exp("second policy holds", "plebian", "127.0.0.1:273/tcp", "drop"),
		})
		if n := b.instances(rep.Ruleset); n != 1 {
			t.Errorf("%d ownerwall rulesets:\n%s", n, rep.Ruleset)
		}
	})
}

// TestCountersCountMatches: every rule has a counter that counts the
// packets it decided; status reports them by rule name.
func TestCountersCountMatches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - {name: hit, to: {host: local, tcp: 992}, who: [plebian], action: reject, log: true}
  - {name: never hit, to: {host: local, tcp: 9}, who: [plebian], action: reject}
`)
		b.use(&sc)
		sc.Attempts = []lab.Attempt{{User: "plebian", To: "127.0.0.1:992/tcp"}, {User: "plebian", To: "[::1]:992/tcp"}}
		rep := netnstest.Run(t, sc)
		// the attempts run after AfterApply: read the counters in a second lab
		_ = rep
		sc2 := sc
		sc2.Attempts = nil
		sc2.Setup = nil
		sc2.AfterApply = [][]string{
			{"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "$SELF", "__probe", "--to", "127.0.0.1:992/tcp"},
			{"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "$SELF", "__probe", "--to", "[::1]:992/tcp"},
			self("status", "--json"),
		}
		rep = netnstest.Run(t, sc2)
		st := rep.Steps[2]
		var status struct {
			Rules []struct {
				Rule    int
				Name    string
				Packets int
			}
		}
		if err := json.Unmarshal([]byte(st.Output), &status); err != nil {
			t.Fatalf("status --json: %v: %s", err, st.Output)
		}
		got := map[string]int{}
		for _, r := range status.Rules {
			got[r.Name] += r.Packets
		}
		if got["hit"] != 2 || got["never hit"] != 0 {
			t.Errorf("want hit at 2 packets and never hit at 0, got %v\n%s", got, st.Output)
		}
	})
}
