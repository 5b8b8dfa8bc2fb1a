package main

import (
	"net/netip"

	"bytes"
	"context"
	"github.com/ownerwall/ownerwall/internal/explain"
	"github.com/ownerwall/ownerwall/internal/ir"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// TestMain lets the test binary play the benchmark's re-executed roles
// (__world, __server, __client, __profile), as the bench binary does.
func TestMain(m *testing.M) {
	if code, ok := runRole(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestGenerate checks the generated worlds mean what the benchmark says:
// the client account is matched by the last accepting rule, every account
// by exactly one, newbie by none until it is added to the group.
func TestGenerate(t *testing.T) {
	for _, shape := range []Shape{ShapeA, ShapeB} {
		for _, n := range []int{1, 10, 21, 100, 1000} {
			w := Generate(n, shape)
			p, err := policy.Parse("bench.yaml", []byte(w.Policy))
			if err != nil {
				t.Fatalf("shape %s N=%d: policy: %v", shape, n, err)
			}
			wantRules := n + 1
			if shape == ShapeB {
				wantRules = Slices + 1
			}
			if len(p.Rules) != wantRules {
				t.Fatalf("shape %s N=%d: %d rules, want %d", shape, n, len(p.Rules), wantRules)
			}
			for _, group := range []string{w.Group, w.GroupAdded} {
				dir := newDir(t, w.Passwd, group)
				rs, err := compile.Compile(context.Background(), p, compile.Env{Dir: dir})
				if err != nil {
					t.Fatalf("shape %s N=%d: compile: %v", shape, n, err)
				}
				d := rs.Dispatch[len(rs.Dispatch)-1]
				attempt := func(uid uint32) explain.Result {
					return explain.Evaluate(rs, explain.Query{UID: uid, Dir: ir.To, Addr: netip.MustParseAddr("127.0.0.1"), Port: 5000, Proto: "tcp"},
						func(a netip.Addr) bool { return a.IsLoopback() })
				}
				for i := range n {
					uid := uint32(accountUID(i))
					if prof := d.ProfileOf(uid); prof < 0 || len(rs.Profiles[prof].Blocks) != 2 {
						t.Fatalf("shape %s N=%d: account %d: profile %d, want the accepting block and the refusal", shape, n, i, prof)
					}
					res := attempt(uid)
					if res.Verdict != ir.Accept {
						t.Fatalf("shape %s N=%d: account %d: %s, want accept", shape, n, i, res.Verdict)
					}
					if i == n-1 && res.Position != len(rs.Rules)-1 {
						t.Errorf("shape %s N=%d: the client is matched by rule %d, want the last accepting rule %d", shape, n, res.Position, len(rs.Rules)-1)
					}
				}
				added := group == w.GroupAdded
				if got := attempt(NewbieUID).Verdict == ir.Accept; got != (added && shape == ShapeB) {
					t.Errorf("shape %s N=%d added=%v: newbie gets %s", shape, n, added, attempt(NewbieUID).Verdict)
				}
			}
			if got := strings.Count(w.Seed, "-j ACCEPT"); got != wantRules-1 {
				t.Errorf("shape %s N=%d: seed has %d ACCEPT rules, want %d", shape, n, got, wantRules-1)
			}
		}
	}
}

// newDir is a Directory over passwd and group text with map lookups (the
// static one scans, which is quadratic at these sizes).
func newDir(t *testing.T, passwd, group string) ident.Directory {
	t.Helper()
	s, err := ident.NewStatic(passwd, group)
	if err != nil {
		t.Fatal(err)
	}
	d := &mapDir{Static: s, users: map[string]ident.Account{}}
	for _, a := range s.Users {
		d.users[a.Name] = a
	}
	return d
}

type mapDir struct {
	*ident.Static
	users map[string]ident.Account
}

func (d *mapDir) LookupUser(ctx context.Context, name string) (ident.Account, error) {
	if a, ok := d.users[name]; ok {
		return a, nil
	}
	return d.Static.LookupUser(ctx, name)
}

func TestFlags(t *testing.T) {
	var errs bytes.Buffer
	opt, err := parseFlags([]string{"-quick"}, &errs)
	if err != nil {
		t.Fatal(err)
	}
	if len(opt.Ns) != 2 || opt.Ns[0] != 10 || opt.Ns[1] != 100 || opt.Duration >= time.Second {
		t.Errorf("-quick: %+v", opt)
	}
	for _, bad := range [][]string{{"-n", "0"}, {"-shapes", "C"}, {"-configs", "pf"}, {"-runs", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, &errs); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestSmoke runs the quick mode's plumbing for N=10, both shapes, every
// configuration, in throwaway namespaces, and checks that numbers come
// out. It never asserts speed. It needs root; without it it skips, except
// under CI=true, where it fails.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: the benchmark smoke test needs root (network namespaces)")
		}
		t.Skip("needs root (network namespaces)")
	}
	for _, c := range []string{"unshare", "setpriv", "nft", "iptables-restore", "ip", "getent", "taskset"} {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true: needs %s", c)
			}
			t.Skipf("needs %s", c)
		}
	}
	var errs bytes.Buffer
	opt, err := parseFlags([]string{"-quick", "-n", "10", "-duration", "100ms", "-runs", "2", "-add-runs", "1"}, &errs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	var log bytes.Buffer
	res, err := Run(ctx, opt, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res.Cases) != 2 {
		t.Fatalf("%d cases, want 2", len(res.Cases))
	}
	for _, c := range res.Cases {
		for _, cfg := range allConfigs {
			if got := len(c.Rates[cfg]); got != 2 {
				t.Errorf("shape %s %s: %d samples, want 2", c.Shape, cfg, got)
			}
			if c.Rate[cfg].Median <= 0 {
				t.Errorf("shape %s %s: no connections measured", c.Shape, cfg)
			}
			if cfg != CfgNone && c.Ratio[cfg].Median <= 0 {
				t.Errorf("shape %s %s: no ratio", c.Shape, cfg)
			}
			if a := c.Apply[cfg]; cfg != CfgNone && (a == nil || a.Error != "" || a.ApplyMS <= 0) {
				t.Errorf("shape %s %s: apply not measured: %+v", c.Shape, cfg, a)
			}
		}
		for _, cfg := range []string{CfgNft, CfgIptables} {
			if c.Apply[cfg].ExportRSSKB <= 0 {
				t.Errorf("shape %s %s: no peak memory", c.Shape, cfg)
			}
			if c.Shape == ShapeB && c.AddToGroup[cfg].Median <= 0 {
				t.Errorf("shape B %s: no add-to-group time", cfg)
			}
			if c.Shape == ShapeB && (c.AddToGroupWatch[cfg].Median <= 0 || c.WatchLoaded[cfg].Min <= 0) {
				t.Errorf("shape B %s: no add-to-group time with watch running: %+v %+v", cfg, c.AddToGroupWatch[cfg], c.WatchLoaded[cfg])
			}
		}
		for _, ch := range c.Checks {
			if !ch.OK {
				t.Errorf("shape %s %s: %s: got %s", c.Shape, ch.Config, ch.What, ch.Got)
			}
		}
	}
	var out bytes.Buffer
	WriteTables(&out, res)
	if !strings.Contains(out.String(), "| A | 10 |") || !strings.Contains(out.String(), "| B | 10 |") {
		t.Errorf("tables:\n%s", out.String())
	}
	if t.Failed() {
		t.Logf("log:\n%s\ntables:\n%s", log.String(), out.String())
	}
}
