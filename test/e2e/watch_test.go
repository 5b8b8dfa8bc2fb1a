package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// wheelTunnel: only wheel's members may reach the tunnel on 992.
const wheelTunnel = `version: 1
rules:
  - {name: wheel may reach the tunnel, to: {host: local, tcp: 992}, who: ["group:wheel"], action: accept}
  - {name: the tunnel is wheel's, to: {host: local, tcp: 992}, action: reject}
`

// waitfor N, in the tests' shell steps: until $DIR/watch.out has N lines
// (5 s at most).
const waitfor = `waitfor() { i=0; while [ "$(wc -l < "$DIR/watch.out" 2>/dev/null || echo 0)" -lt "$1" ]; do i=$((i+1)); [ $i -lt 500 ] || { echo "no line $1:"; cat "$DIR/watch.out"; exit 1; }; sleep 0.01; done; }
`

// TestWatch: `ownerwall watch` applies the policy, then follows the policy
// file (a broken edit is reported, and the last good policy stays) and
// /etc/group (plebian becomes a member of wheel while the file is still
// broken: let through, with no apply run by hand); SIGTERM ends it.
func TestWatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world("") // watch applies the policy, from the start
		b.use(&sc)
		sc.Files = map[string]string{
			"policy.yaml":            wheelTunnel,
			"group.plebian-in-wheel": strings.Replace(group, "wheel:x:10:admin7", "wheel:x:10:admin7,plebian", 1),
			"broken.yaml":            "version: 1\nrules:\n  - {name: x, to: {tcp: 99999}, action: accept}\n",
		}
		start := waitfor + `: > "$DIR/watch.out" # there before the first wc, whoever runs first
"$SELF" watch -f "$DIR/policy.yaml" --json --interval 0 "$@" > "$DIR/watch.out" 2>"$DIR/watch.err" &
echo $! > "$DIR/watch.pid"
waitfor 1; cat "$DIR/watch.out"`
		broken := waitfor + `cat "$DIR/broken.yaml" > "$DIR/policy.yaml"; waitfor 2; sed -n 2p "$DIR/watch.out"`
		member := waitfor + `cat "$DIR/group.plebian-in-wheel" > /etc/group; waitfor 3; sed -n 3p "$DIR/watch.out"`
		stop := `pid=$(cat "$DIR/watch.pid"); kill -TERM "$pid"; i=0
while kill -0 "$pid" 2>/dev/null; do i=$((i+1)); [ $i -lt 500 ] || { echo "watch did not stop"; exit 1; }; sleep 0.01; done
cat "$DIR/watch.err"; echo stopped`
		sh := func(code string) []string {
			return append([]string{"sh", "-c", "SELF=$0 DIR=$1; shift\n" + code, "$SELF", "$DIR"}, sc.ApplyArgs...)
		}
		// The broken edit comes first: accounts and groups must still be
		// followed, with the last good policy.
		sc.AfterApply = [][]string{sh(start), sh(broken), sh(member), sh(stop)}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("added to wheel while watch ran", "plebian", "127.0.0.1:992/tcp", "accept"),
			exp("", "admin7", "[::1]:992/tcp", "accept"),
			exp("not in wheel", "outsider", "127.0.0.1:992/tcp", "reject"),
		})
		requireExits(t, rep, 0, 0, 0, 0)
		type report struct {
			Cause       []string
			Result      string
			Changed     bool
			Error       string
			PolicyError string  `json:"policy_error"`
			LoadedMS    float64 `json:"loaded_ms"`
		}
		line := func(i int) report {
			var r report
			out := strings.TrimSpace(rep.Steps[i].Output)
			if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &r); err != nil {
				t.Fatalf("step %d: %v: %s", i, err, out)
			}
			return r
		}
		if r := line(0); strings.Join(r.Cause, ",") != "start" || !r.Changed || r.Error != "" || !strings.Contains(r.Result, "replaced the whole ruleset") {
			t.Errorf("first apply: %+v", r)
		}
		if r := line(1); strings.Join(r.Cause, ",") != "policy" || !strings.Contains(r.PolicyError, "policy.yaml:3:") || r.Error != "" || r.Changed && b.name == "nft" {
			t.Errorf("after a broken edit: %+v (want the error, and the last good policy kept, unchanged)", r)
		}
		r := line(2)
		wantHow := "replaced the whole ruleset" // iptables keeps uids in rules
		if b.name == "nft" {
			wantHow = "uid map elements in place"
		}
		if strings.Join(r.Cause, ",") != "group" || !r.Changed || r.Error != "" || !strings.Contains(r.Result, wantHow) || r.LoadedMS <= 0 {
			t.Errorf("after the group change: %+v, want %q", r, wantHow)
		}
		if out := rep.Steps[3].Output; strings.TrimSpace(out) != "stopped" {
			t.Errorf("watch's stderr or its end: %q", out)
		}
	})
}

// TestWatchLeavesPendingAlone: while an apply --confirm-within awaits
// confirmation, watch applies nothing (it would remove the pending record
// and with it the rollback): a group change is reported, not applied.
func TestWatchLeavesPendingAlone(t *testing.T) {
	b := backends[0] // nft: the logic is the backend's caller's
	if testing.Short() {
		t.Skip("kernel test: not in -short")
	}
	netnstest.RequireRoot(t)
	sc := world("")
	b.use(&sc)
	sc.Files = map[string]string{
		"policy.yaml": wheelTunnel,
		"closed.yaml": `version: 1
rules:
  - {name: the tunnel is closed, to: {host: local, tcp: 992}, action: reject}
`,
		"group.plebian-in-wheel": strings.Replace(group, "wheel:x:10:admin7", "wheel:x:10:admin7,plebian", 1),
	}
	sh := func(code string) []string {
		return []string{"sh", "-c", "SELF=$0 DIR=$1\n" + waitfor + code, "$SELF", "$DIR"}
	}
	sc.AfterApply = [][]string{
		sh(`: > "$DIR/watch.out"
"$SELF" watch -f "$DIR/policy.yaml" --json --interval 0 > "$DIR/watch.out" 2>&1 &
echo $! > "$DIR/watch.pid"; waitfor 1`),
		sh(`"$SELF" apply -f "$DIR/closed.yaml" --confirm-within 5m`),
		sh(`cat "$DIR/group.plebian-in-wheel" > /etc/group; waitfor 2; sed -n 2p "$DIR/watch.out"`),
		sh(`kill -TERM "$(cat "$DIR/watch.pid")"; "$SELF" status --json | grep -o '"pending_until": *"[^"]*"' || echo "no pending apply"`),
	}
	rep := netnstest.Expect(t, sc, []lab.Expectation{
		exp("the pending apply is in force", "admin7", "127.0.0.1:992/tcp", "reject"),
		exp("", "plebian", "127.0.0.1:992/tcp", "reject"),
	})
	requireExits(t, rep, 0, 0, 0, 0)
	if out := rep.Steps[2].Output; !strings.Contains(out, "awaits `ownerwall confirm`") || !strings.Contains(out, `"group"`) || !strings.Contains(out, `"pending":true`) {
		t.Errorf("watch's line after the group change: %s", out)
	}
	if out := rep.Steps[3].Output; !strings.Contains(out, "pending_until") {
		t.Errorf("the pending apply is gone: %s", out)
	}
}
