package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// bigPolicy has one rule per account for n accounts: large enough that
// an apply takes a while to kill in the middle of.
func bigPolicy(n int, port int) (policy, passwdExtra string) {
	var b, p strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&p, "user%d:x:%d:%d::/home/user%d:/bin/sh\n", i, 10000+i, 10000+i, i)
		fmt.Fprintf(&b, "  - {name: r%d, to: {host: local, tcp: %d}, who: [user%d], action: reject}\n", i, port+i%50, i)
	}
	return b.String(), p.String()
}

// TestKernelRefusalChangesNothing: when the kernel refuses the transaction
// midway (an element that conflicts with one already in the batch), the
// previous ruleset stays exactly as it was.
func TestKernelRefusalChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		if b.name != "nft" {
			t.Skip("the injection hook is nft's")
		}
		sc := world(tunnelPolicy)
		sc.Files = map[string]string{"second.yaml": secondPolicy}
		sc.AfterApply = [][]string{
			{"env", "OWNERWALL_TEST_APPEND=add element inet ownerwall uid_profile { 5 : goto reject_packet }", "$SELF", "apply", "-f", "$DIR/second.yaml"},
		}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			exp("old policy intact", "plebian", "127.0.0.1:992/tcp", "reject"),
			exp("new policy absent", "plebian", "127.0.0.1:273/tcp", "accept"),
		})
		requireExits(t, rep, 1)
		if !strings.Contains(rep.Steps[0].Output, "nothing changed") {
			t.Errorf("apply output: %s", rep.Steps[0].Output)
		}
		if stripCounters(tableBlock(rep.Steps[0].Ruleset, "inet", "ownerwall")) == "" ||
			stripCounters(rep.Steps[0].Ruleset) != stripCounters(rep.Ruleset) {
			t.Errorf("the ruleset changed")
		}
	})
}

// TestKillDuringApply: kill -9 at random moments of an apply leaves the old
// ruleset or the new one, never a mix, and the state file is never
// half-written.
func TestKillDuringApply(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		// iptables applies take longer; fewer tries keep the run short.
		tries := 25
		if b.name != "nft" {
			tries = 15
		}
		oldPolicy, extra := bigPolicy(250, 20000)
		newPolicy, _ := bigPolicy(250, 30000)
		sc := world(oldPolicy)
		sc.Passwd += extra
		b.use(&sc)
		a := strings.Join(b.args, " ")
		sc.Files = map[string]string{
			"old.yaml": oldPolicy,
			"new.yaml": newPolicy,
			"kill.sh": `set -u
lst() { ` + b.listShell() + `; }
fp() { lst | sha256sum | cut -c1-16; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
$SELF apply -f $DIR/new.yaml ` + a + ` >/dev/null && newfp=$(fp) && lst > $DIR/new.lst && echo "new $newfp"
t0=$(ms); $SELF apply -f $DIR/old.yaml ` + a + ` >/dev/null && oldfp=$(fp) && lst > $DIR/old.lst && echo "old $oldfp"; took=$(( $(ms) - t0 ))
echo "took $took"
for i in $(seq 1 ` + fmt.Sprint(tries) + `); do
  $SELF apply -f $DIR/new.yaml ` + a + ` >/dev/null 2>&1 &
  pid=$!
  # spread the kills over the whole length of an apply, and a bit past it
  sleep $(printf '0.%03d' $(( took * i * 10 / ` + fmt.Sprint(tries*9) + ` % 1000 )))
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  # the worker the killed apply started (and its nft or iptables-restore) finishes on its own
  while pgrep --ns $$ --nslist net -f "__work|^nft |tables-restore" >/dev/null; do sleep 0.01; done
  now=$(fp)
  echo "try $now"
  if [ "$now" != "$newfp" ] && [ "$now" != "$oldfp" ]; then
    lst > $DIR/now.lst
    echo "diff against the old ruleset:"; diff $DIR/old.lst $DIR/now.lst | head -20
    echo "diff against the new ruleset:"; diff $DIR/new.lst $DIR/now.lst | head -20
  fi
  $SELF status --json >/dev/null 2>&1 && echo state-ok || echo state-BAD
  $SELF apply -f $DIR/old.yaml ` + a + ` >/dev/null
done
`,
		}
		sc.AfterApply = [][]string{{"sh", "-c", "SELF=$0 DIR=$1 sh $1/kill.sh", "$SELF", "$DIR"}}
		rep := netnstest.Expect(t, sc, nil)
		requireExits(t, rep, 0)
		fps := map[string]string{}
		seen := map[string]int{}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(rep.Steps[0].Output), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && (f[0] == "new" || f[0] == "old"):
				fps[f[1]] = f[0]
			case len(f) == 2 && f[0] == "try":
				n++
				which, ok := fps[f[1]]
				if !ok {
					t.Errorf("try %d: the live table is neither the old nor the new ruleset (%s)", n, f[1])
				}
				seen[which]++
			case len(f) == 1 && f[0] == "state-BAD":
				t.Errorf("a state file was left unreadable")
			}
		}
		if t.Failed() {
			t.Logf("script output:\n%s", rep.Steps[0].Output)
		}
		if len(fps) != 2 || n != tries {
			t.Fatalf("script output unexpected (fingerprints %v, %d tries):\n%s", fps, n, rep.Steps[0].Output)
		}
		t.Logf("after kill -9: old ruleset %d times, new %d times", seen["old"], seen["new"])
	})
}

// TestConcurrentApplies: applies and flushes running at once serialize;
// afterwards the live ruleset is exactly one policy's, and matches the
// state (no drift).
func TestConcurrentApplies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(tunnelPolicy)
		b.use(&sc)
		sc.Files = map[string]string{"second.yaml": secondPolicy}
		a := strings.Join(b.args, " ")
		sc.AfterApply = [][]string{
			{"sh", "-c", `for i in 1 2 3 4 5 6; do $0 apply -f $1/policy.yaml ` + a + ` >/dev/null & $0 apply -f $1/second.yaml ` + a + ` >/dev/null & $0 flush >/dev/null & done; wait; $0 apply -f $1/second.yaml ` + a + ` >/dev/null & $0 apply -f $1/policy.yaml ` + a + ` >/dev/null & wait`, "$SELF", "$DIR"},
			self("plan", "-f", "$DIR/policy.yaml"),
			self("plan", "-f", "$DIR/second.yaml"),
			self("status"),
		}
		rep := netnstest.Expect(t, sc, nil)
		requireExits(t, rep, 0, -1, -1, 0)
		p1, p2 := rep.Steps[1].Exit, rep.Steps[2].Exit
		if !(p1 == 0 && p2 == 2 || p1 == 2 && p2 == 0) {
			t.Errorf("the live ruleset is neither policy exactly (plan exits %d and %d):\n%s\n%s", p1, p2, rep.Steps[1].Output, rep.Steps[2].Output)
		}
		if !strings.Contains(rep.Steps[3].Output, "drift: none") {
			t.Errorf("state and live ruleset disagree:\n%s", rep.Steps[3].Output)
		}
	})
}
