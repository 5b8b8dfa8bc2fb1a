package differential

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/lab"
)

var (
	seedFlag     = flag.Int64("seed", 0, "differential: base seed (0: $OWNERWALL_DIFF_SEED, else from the time)")
	policiesFlag = flag.Int("policies", 100, "differential: policies per backend")
	attemptsFlag = flag.Int("attempts", 32, "differential: attempts per policy")
	onlyFlag     = flag.Int("only", -1, "differential: run only this policy index")
	backendsFlag = flag.String("backends", "nft,iptables-nft", "differential: backends (nft, iptables-nft, iptables-legacy)")
	labsFlag     = flag.Int("labs", 6, "differential: labs at a time per backend")
	timeoutFlag  = flag.Int("timeout-ms", 250, "differential: probe timeout")
	shrinkFlag   = flag.Int("shrink", 2, "differential: mismatch classes to shrink per backend (one policy each)")
	tolerateFlag = flag.String("tolerate", "", "differential: mismatch classes to log instead of failing, e.g. explain,kernel")
)

var (
	seedOnce sync.Once
	seedVal  int64
)

// baseSeed is -seed, else $OWNERWALL_DIFF_SEED, else the time: the same for
// every test of the run.
func baseSeed() int64 {
	seedOnce.Do(func() {
		switch {
		case *seedFlag != 0:
			seedVal = *seedFlag
		case os.Getenv("OWNERWALL_DIFF_SEED") != "":
			v, err := strconv.ParseInt(os.Getenv("OWNERWALL_DIFF_SEED"), 10, 64)
			if err != nil {
				panic("OWNERWALL_DIFF_SEED: " + err.Error())
			}
			seedVal = v
		default:
			seedVal = time.Now().UnixNano() % 1_000_000_000
		}
	})
	return seedVal
}

// backend is one way the lab applies a policy.
type backend struct {
	name    string // "nft", "iptables-nft", "iptables-legacy"
	kind    string // what seen() needs: "nft" or "iptables"
	args    []string
	flavour string
}

var allBackends = map[string]backend{
	"nft":             {name: "nft", kind: "nft"},
	"iptables-nft":    {name: "iptables-nft", kind: "iptables", args: []string{"--backend", "iptables"}, flavour: "nft"},
	"iptables-legacy": {name: "iptables-legacy", kind: "iptables", args: []string{"--backend", "iptables"}, flavour: "legacy"},
}

// testCase is one generated policy and its attempts.
type testCase struct {
	Index    int
	Seed     int64
	Policy   genPolicy
	Attempts []attempt
}

func caseSeed(base int64, i int) int64 { return base*1_000_003 + int64(i) }

// maxDropShare bounds the attempts whose predicted outcome is drop (each
// costs the probe timeout): more are generated and thrown away.
const maxDropShare = 0.25

// genCase generates policy i of the run and its attempts. Attempts are
// drawn at random and kept, except that predicted drops (on any backend)
// are kept only while they are at most a quarter of the attempts.
func genCase(base int64, i, n int) (testCase, error) {
	seed := caseSeed(base, i)
	g := &gen{r: rand.New(rand.NewSource(seed))}
	tc := testCase{Index: i, Seed: seed, Policy: g.policy()}
	rs, err := compilePolicy(policyName(i), tc.Policy.yaml())
	if err != nil {
		return tc, fmt.Errorf("generated policy %d (seed %d) does not compile: %v\n%s", i, seed, err, tc.Policy.yaml())
	}
	drops := 0
	srcPorts := append([]int(nil), srcPortPool...)
	for tries := 0; len(tc.Attempts) < n; tries++ {
		free := srcPorts
		a := g.attempt(&srcPorts)
		if predictsDrop(rs, a) {
			if float64(drops+1) > maxDropShare*float64(n) && tries < 20*n {
				srcPorts = free // not used after all
				continue
			}
			drops++
		}
		tc.Attempts = append(tc.Attempts, a)
	}
	return tc, nil
}

func predictsDrop(rs *ir.Ruleset, a attempt) bool {
	for _, k := range []string{"nft", "iptables"} {
		if predict(rs, a, k).Expect == "drop" {
			return true
		}
	}
	return false
}

func policyName(i int) string { return fmt.Sprintf("diff-%d.yaml", i) }

// scenario is the lab world for a policy, its attempts and a backend.
func scenario(b backend, name, yaml string, attempts []lab.Attempt, timeoutMS int) lab.Scenario {
	return lab.Scenario{
		Passwd: passwd, Group: group, Hosts: extraHosts,
		PolicyName: name, Policy: yaml,
		ApplyArgs: b.args, IptablesFlavour: b.flavour,
		Remote: true, Listeners: listeners(),
		Attempts: attempts, TimeoutMS: timeoutMS,
	}
}
