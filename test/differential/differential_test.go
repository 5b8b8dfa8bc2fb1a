package differential

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownerwall/ownerwall/internal/backend/iptables"
	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestGeneratorPoliciesCompile: every generated policy parses, compiles
// and renders on both backends, and explain answers every attempt. No
// kernel.
func TestGeneratorPoliciesCompile(t *testing.T) {
	base := baseSeed()
	n := 500
	if testing.Short() {
		n = 100
	}
	for i := range n {
		tc, err := genCase(base, i, *attemptsFlag)
		if err != nil {
			t.Fatalf("seed %d: %v", base, err)
		}
		rs, err := compilePolicy(policyName(i), tc.Policy.yaml())
		if err != nil {
			t.Fatalf("seed %d policy %d: %v", base, i, err)
		}
		nft.Build(nft.NewTransaction(), rs)
		if v4, v6 := iptables.Render(rs); v4 == "" || v6 == "" {
			t.Fatalf("seed %d policy %d: empty iptables rendering", base, i)
		}
		for _, a := range tc.Attempts {
			for _, k := range []string{"nft", "iptables"} {
				if e := predict(rs, a, k).Expect; e != "accept" && e != "reject" && e != "drop" {
					t.Fatalf("seed %d policy %d: prediction %q", base, i, e)
				}
			}
		}
		// Every shrinking step of a valid policy is a policy the shrinker
		// can render; most compile.
		for _, c := range candidates(tc.Policy) {
			_ = c.yaml()
		}
	}
}

// mismatch is one attempt the kernel decided otherwise than explain.
type mismatch struct {
	attempt  attempt
	pred     prediction
	observed string
	detail   string
	class    string
}

// outcome is what one policy's lab run gave.
type outcome struct {
	tc         testCase
	err        error
	applyError string
	mismatches []mismatch
	observed   map[string]int
}

// TestDifferential: for each backend, -policies random policies (100 by
// default), each applied in a lab of its own with -attempts attempts (24),
// every observation compared with explain's prediction. A mismatch is
// confirmed in a fresh lab with a long timeout, then shrunk.
func TestDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("kernel test: not in -short")
	}
	netnstest.RequireRoot(t)
	bin := netnstest.Binary(t)
	base := baseSeed()
	t.Logf("seed %d (reproduce: go test ./test/differential/ -run TestDifferential -seed %d)", base, base)

	var cases []testCase
	for i := range *policiesFlag {
		if *onlyFlag >= 0 && i != *onlyFlag {
			continue
		}
		tc, err := genCase(base, i, *attemptsFlag)
		if err != nil {
			t.Fatalf("seed %d: %v", base, err)
		}
		cases = append(cases, tc)
	}
	for _, name := range strings.Split(*backendsFlag, ",") {
		b, ok := allBackends[strings.TrimSpace(name)]
		if !ok {
			t.Fatalf("unknown backend %q", name)
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			runBackend(t, bin, b, base, cases)
		})
	}
}

func tolerated(class string) bool {
	for _, c := range strings.Split(*tolerateFlag, ",") {
		if strings.TrimSpace(c) == class {
			return true
		}
	}
	return false
}

func runBackend(t *testing.T, bin string, b backend, base int64, cases []testCase) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	outs := make([]outcome, len(cases))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, *labsFlag) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				outs[i] = runCase(ctx, bin, b, cases[i])
			}
		}()
	}
	for i := range cases {
		work <- i
	}
	close(work)
	wg.Wait()

	attempts, tally := 0, map[string]int{}
	var failed []int
	for i, o := range outs {
		if o.err != nil {
			t.Fatalf("seed %d policy %d: %v", base, o.tc.Index, o.err)
		}
		attempts += len(o.tc.Attempts)
		for k, v := range o.observed {
			tally[k] += v
		}
		if o.applyError != "" || len(o.mismatches) > 0 {
			failed = append(failed, i)
		}
	}
	t.Logf("%s: %d policies, %d attempts in %s; observed %s", b.name, len(cases), attempts, time.Since(start).Round(100*time.Millisecond), fmtTally(tally))

	// Confirm each mismatch in a fresh lab with a long timeout (a slow
	// answer on a loaded machine is not a mismatch), report, and shrink
	// the first policy of each class.
	classes := map[string]int{}
	shrunk := map[string]bool{}
	bad := 0
	for _, i := range failed {
		o := outs[i]
		if o.applyError == "" {
			// A tolerated class is logged, neither confirmed nor shrunk:
			// its observation is exactly what the kernel model predicts.
			var rest []mismatch
			for _, m := range o.mismatches {
				if tolerated(m.class) {
					classes[m.class]++
					t.Logf("tolerated %s mismatch on %s, policy %d: %s: explain predicts %s, kernel observed %s",
						m.class, b.name, o.tc.Index, m.attempt, m.pred.Expect, m.observed)
				} else {
					rest = append(rest, m)
				}
			}
			o.mismatches = rest
			if len(o.mismatches) == 0 {
				continue
			}
			o.mismatches = confirm(ctx, t, bin, b, o)
			if len(o.mismatches) == 0 {
				continue
			}
		}
		var msg strings.Builder
		fmt.Fprintf(&msg, "MISMATCH on %s: seed %d, policy %d (case seed %d)\nreproduce: go test ./test/differential/ -run 'TestDifferential/%s' -seed %d -only %d -v\npolicy:\n%s",
			b.name, base, o.tc.Index, o.tc.Seed, b.name, base, o.tc.Index, indent(o.tc.Policy.yaml()))
		var f failure
		fails := false
		if o.applyError != "" {
			fmt.Fprintf(&msg, "apply failed: %s\n", o.applyError)
			f = failure{apply: true, class: "apply"}
			classes["apply"]++
			fails = true
		} else {
			for _, m := range o.mismatches {
				ref, why := refPredict(o.tc.Policy, m.attempt, b.kind)
				fmt.Fprintf(&msg, "attempt: %s\n  %s\n  reference model (docs/policy.md): %s (%s)\n  kernel observed %s (%s)\n  class: %s\n", m.attempt, m.pred, ref, why, m.observed, m.detail, m.class)
				classes[m.class]++
				if !tolerated(m.class) {
					fails = true
				}
				if !shrunk[m.class] && f.class == "" {
					f = failure{attempt: m.attempt, class: m.class}
				}
			}
		}
		if f.class != "" && !shrunk[f.class] && len(shrunk) < *shrinkFlag {
			shrunk[f.class] = true
			t0 := time.Now()
			p, r, runs := shrink(ctx, bin, b, o.tc.Policy, f, max(1, *labsFlag), 120)
			if r.reproduces {
				msg.WriteString(describeShrunk(b, p, f, r, runs, time.Since(t0)))
			} else {
				fmt.Fprintf(&msg, "shrinking: the %s failure did not reproduce in a fresh lab\n", f.class)
			}
		}
		if fails {
			bad++
			t.Error(msg.String())
		} else {
			t.Log(msg.String())
		}
	}
	if len(classes) > 0 {
		t.Logf("%s: confirmed mismatching attempts by class: %s", b.name, fmtTally(classes))
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d policies differ from explain (seed %d)", b.name, bad, len(cases), base)
	}
	t.Logf("%s: done in %s", b.name, time.Since(start).Round(100*time.Millisecond))
}

func runCase(ctx context.Context, bin string, b backend, tc testCase) outcome {
	o := outcome{tc: tc, observed: map[string]int{}}
	yaml := tc.Policy.yaml()
	rs, err := compilePolicy(policyName(tc.Index), yaml)
	if err != nil {
		o.err = err
		return o
	}
	var attempts []lab.Attempt
	for _, a := range tc.Attempts {
		attempts = append(attempts, a.Lab)
	}
	rep, err := lab.Run(ctx, bin, scenario(b, policyName(tc.Index), yaml, attempts, *timeoutFlag))
	if err != nil {
		o.err = err
		return o
	}
	if rep.ApplyError != "" {
		o.applyError = rep.ApplyError
		return o
	}
	if len(rep.Results) != len(attempts) {
		o.err = fmt.Errorf("lab returned %d results for %d attempts", len(rep.Results), len(attempts))
		return o
	}
	for j, a := range tc.Attempts {
		r := rep.Results[j]
		o.observed[r.Observed]++
		if p, class := judge(rs, tc.Policy, a, b.kind, r.Observed); class != "" {
			o.mismatches = append(o.mismatches, mismatch{attempt: a, pred: p, observed: r.Observed, detail: r.Detail, class: class})
		}
	}
	return o
}

// confirm runs a policy's mismatching attempts again in a fresh lab with a
// long probe timeout and returns those that still differ, with the class
// of the second observation.
func confirm(ctx context.Context, t *testing.T, bin string, b backend, o outcome) []mismatch {
	var attempts []lab.Attempt
	for _, m := range o.mismatches {
		attempts = append(attempts, m.attempt.Lab)
	}
	yaml := o.tc.Policy.yaml()
	rs, _ := compilePolicy(policyName(o.tc.Index), yaml)
	rep, err := lab.Run(ctx, bin, scenario(b, policyName(o.tc.Index), yaml, attempts, confirmTimeoutMS))
	if err != nil || rep.ApplyError != "" || len(rep.Results) != len(attempts) {
		t.Logf("%s policy %d: confirming lab failed (%v): keeping the mismatches", b.name, o.tc.Index, err)
		return o.mismatches
	}
	var out []mismatch
	for j, m := range o.mismatches {
		r := rep.Results[j]
		if _, class := judge(rs, o.tc.Policy, m.attempt, b.kind, r.Observed); class != "" {
			m.observed, m.detail, m.class = r.Observed, r.Detail, class
			out = append(out, m)
		} else {
			t.Logf("%s policy %d: %s observed %s (%s) once, %s on a second run: timing, not counted",
				b.name, o.tc.Index, m.attempt, m.observed, m.detail, r.Observed)
		}
	}
	return out
}

func fmtTally(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n") + "\n"
}
