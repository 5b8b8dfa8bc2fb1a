package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

const secondPolicy = `version: 1
rules:
  - {name: rsync tunnel is root's, to: {host: local, tcp: 273}, except: [root], action: drop}
`

func self(args ...string) []string { return append([]string{"$SELF"}, args...) }

func requireExits(t *testing.T, rep *lab.Report, want ...int) {
	t.Helper()
	if len(rep.Steps) != len(want) {
		t.Fatalf("%d steps, want %d", len(rep.Steps), len(want))
	}
	for i, st := range rep.Steps {
		if want[i] >= 0 && st.Exit != want[i] {
			t.Errorf("step %d %v: exit %d, want %d: %s", i, st.Cmd, st.Exit, want[i], st.Output)
		}
	}
}

// TestPlan: exit 0 when the live ruleset is the policy's, 2 with the rules
// and elements that would change, 2 when the table was edited by hand
// (drift), 1 on an invalid policy; status names the drift.
func TestPlan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.Files = map[string]string{"second.yaml": secondPolicy, "bad.yaml": "version: 1\nrules: [{to: {tcp: 0}, action: drop}]\n"}
		sc.AfterApply = [][]string{
			self("plan", "-f", "$DIR/policy.yaml"),
			self("plan", "-f", "$DIR/second.yaml"),
			self("plan", "-f", "$DIR/second.yaml", "--json"),
			self("plan", "-f", "$DIR/bad.yaml"),
			b.handEdit(),
			self("plan", "-f", "$DIR/policy.yaml"),
			self("status"),
			self("apply", "-f", "$DIR/policy.yaml"),
			self("plan", "-f", "$DIR/policy.yaml"),
			self("status", "--json"),
		}
		rep := netnstest.Expect(t, sc, nil)
		requireExits(t, rep, 0, 2, 2, 1, 0, 2, 0, 0, 0, 0)
		s := rep.Steps
		if !strings.Contains(s[0].Output, "no changes") {
			t.Errorf("plan of the applied policy: %s", s[0].Output)
		}
		for _, want := range []string{`- rule 1 "telnet tunnel is root's"`, `+ rule 1 "rsync tunnel is root's"`} {
			if !strings.Contains(s[1].Output, want) {
				t.Errorf("plan of another policy lacks %q:\n%s", want, s[1].Output)
			}
		}
		var pj struct {
			Changes        bool
			Added, Removed []string
		}
		if err := json.Unmarshal([]byte(s[2].Output), &pj); err != nil || !pj.Changes || len(pj.Added) == 0 || len(pj.Removed) == 0 {
			t.Errorf("plan --json: %v: %s", err, s[2].Output)
		}
		if !strings.Contains(s[5].Output, "drift") || !strings.Contains(s[5].Output, "4444") {
			t.Errorf("plan after a hand edit does not show the drift:\n%s", s[5].Output)
		}
		if !strings.Contains(s[6].Output, "DRIFT") || !strings.Contains(s[6].Output, "4444") {
			t.Errorf("status after a hand edit does not show the drift:\n%s", s[6].Output)
		}
		if !strings.Contains(s[8].Output, "no changes") {
			t.Errorf("apply did not repair the drift:\n%s", s[8].Output)
		}
		var st struct {
			Backend string
			Loaded  bool
			Policy  string `json:"policy_file"`
			Drift   []string
			Rules   []struct {
				Rule    int
				Name    string
				Packets int
			}
		}
		if err := json.Unmarshal([]byte(s[9].Output), &st); err != nil {
			t.Fatalf("status --json: %v: %s", err, s[9].Output)
		}
		if !st.Loaded || !strings.HasSuffix(st.Policy, "policy.yaml") || len(st.Drift) != 0 || len(st.Rules) != 1 || st.Rules[0].Name != "telnet tunnel is root's" {
			t.Errorf("status --json: %+v", st)
		}
	})
}

// TestConfirmWithinRollsBack: an apply that is not confirmed in time is
// rolled back by itself, even though the shell that ran it was killed
// along with its whole process group (a lost SSH session).
func TestConfirmWithinRollsBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.Files = map[string]string{"second.yaml": secondPolicy}
		applyArgs := strings.Join(b.args, " ")
		sc.AfterApply = [][]string{
			{"setsid", "--wait", "sh", "-c", "$SELF apply -f $DIR/second.yaml --confirm-within 700ms " + applyArgs + " && kill -KILL 0"},
			{"sh", "-c", "$SELF status | grep PENDING"},
			{"sleep", "1.5"},
			self("confirm"),
			self("status"),
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("first policy back", "plebian", "127.0.0.1:992/tcp", "reject"),
			exp("second policy gone", "plebian", "127.0.0.1:273/tcp", "accept"),
		})
		requireExits(t, rep, 137, 0, 0, 1, 0)
		if !strings.Contains(rep.Steps[1].Ruleset, "273") || !b.loaded(rep.Steps[1].Ruleset) {
			t.Errorf("the second policy was not live before the deadline:\n%s", rep.Steps[1].Ruleset)
		}
		if !strings.Contains(rep.Steps[4].Output, "policy.yaml") || strings.Contains(rep.Steps[4].Output, "second.yaml") {
			t.Errorf("status after rollback does not name the first policy:\n%s", rep.Steps[4].Output)
		}
	})
}

// TestConfirmKeeps: a confirmed apply stays past its deadline; confirm
// with nothing pending exits 1.
func TestConfirmKeeps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.Files = map[string]string{"second.yaml": secondPolicy}
		sc.AfterApply = [][]string{
			append(self("apply", "-f", "$DIR/second.yaml", "--confirm-within", "700ms"), b.args...),
			self("confirm"),
			{"sleep", "1.2"},
			self("confirm"),
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("second policy stays", "plebian", "127.0.0.1:273/tcp", "drop"),
			exp("first policy gone", "plebian", "127.0.0.1:992/tcp", "accept"),
		})
		requireExits(t, rep, 0, 0, 0, 1)
	})
}

// TestConfirmWithinFromNothing: when nothing was applied before, the
// rollback removes ownerwall's table.
func TestConfirmWithinFromNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world("")
		sc.Files = map[string]string{"policy.yaml": tunnelPolicy}
		sc.AfterApply = [][]string{
			append(self("apply", "-f", "$DIR/policy.yaml", "--confirm-within", "500ms"), b.args...),
			{"sleep", "1.2"},
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{exp("nothing left", "plebian", "127.0.0.1:992/tcp", "accept")})
		requireExits(t, rep, 0, 0)
		if !b.loaded(rep.Steps[0].Ruleset) || b.loaded(rep.Ruleset) {
			t.Errorf("want the table during the window and none after:\napply said: %s\nduring:\n%s\nafter:\n%s", rep.Steps[0].Output, rep.Steps[0].Ruleset, rep.Ruleset)
		}
	})
}

// TestRestore: restore loads the last applied ruleset (as at boot, when
// the kernel has none); a corrupt or missing state file is a clear error
// that changes nothing.
func TestRestore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.AfterApply = [][]string{
			b.wipe(),
			self("restore"),
			{"cp", "$DIR/state/applied.json", "$DIR/applied.good"},
			{"sh", "-c", "head -c 100 $DIR/applied.good > $DIR/state/applied.json"},
			self("restore"),
			{"rm", "$DIR/state/applied.json"},
			self("restore"),
			{"cp", "$DIR/applied.good", "$DIR/state/applied.json"},
			self("restore"),
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("restored", "plebian", "127.0.0.1:992/tcp", "reject"),
			exp("restored", "root", "127.0.0.1:992/tcp", "accept"),
		})
		requireExits(t, rep, 0, 0, 0, 0, 1, 0, 1, 0, 0)
		s := rep.Steps
		if !b.loaded(s[1].Ruleset) {
			t.Errorf("restore did not load the table:\n%s", s[1].Ruleset)
		}
		if !strings.Contains(s[4].Output, "corrupt") || strings.Count(strings.TrimSpace(s[4].Output), "\n") != 0 {
			t.Errorf("corrupt state: want one line saying so, got %q", s[4].Output)
		}
		if !strings.Contains(s[6].Output, "nothing to restore") {
			t.Errorf("missing state: got %q", s[6].Output)
		}
		for _, i := range []int{4, 6} {
			if stripCounters(s[i].Ruleset) != stripCounters(s[i-1].Ruleset) {
				t.Errorf("a failed restore changed the ruleset")
			}
		}
	})
}

// TestMembershipChangeUpdatesElementsOnly: adding an account to a group
// and applying again changes uid map elements only: the table, its chains
// and its counters stay (nft); the new member is treated as one at once.
func TestMembershipChangeUpdatesElementsOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - {name: only wheel on 273, to: {host: local, tcp: 273}, except: ["group:wheel"], action: reject}
`)
		b.use(&sc)
		listing := []string{"nft", "-a", "list", "ruleset"}
		sc.AfterApply = [][]string{
			listing,
			{"sh", "-c", `sed 's/^wheel:x:10:admin7$/wheel:x:10:admin7,plebian/' $0/group > $0/group.new && cat $0/group.new > $0/group && getent group wheel`, "$DIR"},
			append(self("apply", "-f", "$DIR/policy.yaml"), b.args...),
			listing,
			self("plan", "-f", "$DIR/policy.yaml"),
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("new member", "plebian", "127.0.0.1:273/tcp", "accept"),
			exp("old member", "admin7", "127.0.0.1:273/tcp", "accept"),
			exp("non-member", "outsider", "127.0.0.1:273/tcp", "reject"),
		})
		requireExits(t, rep, 0, 0, 0, 0, 0)
		s := rep.Steps
		if !strings.Contains(s[1].Output, "admin7,plebian") {
			t.Fatalf("the group file did not change: %s", s[1].Output)
		}
		if b.name != "nft" {
			if !strings.Contains(s[2].Output, "replaced the whole ruleset") {
				t.Errorf("apply: %s", s[2].Output)
			}
			return
		}
		if !strings.Contains(s[2].Output, "in place") {
			t.Errorf("apply did not update in place: %s", s[2].Output)
		}
		chains := regexp.MustCompile(`(?m)^\s*(table inet ownerwall|chain \S+|counter \S+) \{ # handle \d+$`)
		before, after := chains.FindAllString(s[0].Output, -1), chains.FindAllString(s[3].Output, -1)
		if len(before) < 4 || strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Errorf("the table, chains or counters were recreated:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
	})
}
