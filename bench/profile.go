package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ownerwall/ownerwall/internal/backend/iptables"
	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/cli"
	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/policy"
	"github.com/ownerwall/ownerwall/internal/state"
)

// profileMain is the `__profile` role, run inside a world: the ownerwall
// command line given after "--", in process, under the CPU profiler (what
// the product spends its own CPU on; time spent waiting for nft, getent or
// iptables-restore shows up as os/exec waits). With -trace it then runs the
// same apply again phase by phase, through the product's own packages, and
// writes how long each phase took: where the wall-clock time goes.
func profileMain(args []string) int {
	fs := flag.NewFlagSet("__profile", flag.ContinueOnError)
	cpu := fs.String("cpu", "", "CPU profile output")
	mem := fs.String("mem", "", "heap profile output (after the command)")
	trace := fs.String("trace", "", "phase timings output (apply only)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmdArgs := fs.Args()
	ctx := context.Background()
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	start := time.Now()
	code := cli.Main(ctx, cmdArgs, os.Stdout, os.Stderr)
	wall := time.Since(start)
	if *cpu != "" {
		pprof.StopCPUProfile()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if *mem != "" {
		if f, err := os.Create(*mem); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	fmt.Fprintf(os.Stderr, "ownerwall %s: exit %d, %.1f ms, %.1f MB allocated, heap peak ~%.1f MB\n",
		strings.Join(cmdArgs, " "), code, float64(wall.Microseconds())/1000, float64(ms.TotalAlloc)/(1<<20), float64(ms.HeapSys)/(1<<20))
	if *trace != "" && len(cmdArgs) > 0 && cmdArgs[0] == "apply" {
		if err := phases(ctx, cmdArgs[1:], *trace); err != nil {
			fmt.Fprintln(os.Stderr, "phases:", err)
			return 1
		}
	}
	return code
}

// phases repeats `apply -f FILE [--backend B]` step by step, as the CLI
// does it, timing each step.
func phases(ctx context.Context, args []string, out string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	file := fs.String("f", "", "")
	backend := fs.String("backend", "nft", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var b strings.Builder
	var total time.Duration
	step := func(name string, fn func() error) error {
		t := time.Now()
		err := fn()
		d := time.Since(t)
		total += d
		fmt.Fprintf(&b, "%-44s %10.1f ms\n", name, float64(d.Microseconds())/1000)
		return err
	}
	var data []byte
	var p *policy.Policy
	var rs *ir.Ruleset
	var script, listing string
	dir := ident.NewNSS()
	env := compile.Env{Dir: dir, Units: ident.Systemd{}, Hosts: ident.Resolver{}}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"read policy", func() (err error) { data, err = os.ReadFile(*file); return }},
		{"parse policy (YAML, validate)", func() (err error) { p, err = policy.Parse(*file, data); return }},
		{"getent passwd (enumerate accounts)", func() error { _, err := dir.Accounts(ctx); return err }},
		{"getent group (enumerate groups)", func() error { _, err := dir.LookupGroup(ctx, "root"); return err }},
		{"compile (resolve, profiles, dispatch)", func() (err error) { rs, err = compile.Compile(ctx, p, env); return }},
		{"render script", func() error {
			if *backend == "nft" {
				script = nft.Script(rs)
			} else {
				script = iptables.Script(rs)
			}
			return nil
		}},
		{"load (nft -f / *tables-restore, incl. reads)", func() error {
			if *backend == "nft" {
				return nft.Load(ctx, script, nft.HasUnits(rs))
			}
			return iptables.Load(ctx, rs)
		}},
		{"list live ruleset (for the state record)", func() (err error) {
			if *backend == "nft" {
				listing, err = nft.List(ctx)
			} else {
				listing, err = iptables.Listing(ctx)
			}
			return
		}},
		{"save state (normalize, JSON, fsync)", func() error {
			dir, err := os.MkdirTemp("", "ownerwall-bench-state-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			rec := &state.Applied{Backend: *backend, Policy: *file, AppliedAt: time.Now().UTC(),
				Script: script, Listing: nft.Normalize(listing), Ruleset: rs}
			return state.Store{Dir: dir}.SaveApplied(rec)
		}},
	}
	for _, s := range steps {
		if err := step(s.name, s.fn); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	fmt.Fprintf(&b, "%-44s %10.1f ms\n", "total", float64(total.Microseconds())/1000)
	fmt.Fprintf(&b, "(%d rules, %d profiles, %d uid ranges, script %d bytes, listing %d bytes)\n",
		len(rs.Rules), len(rs.Profiles), len(rs.Dispatch[len(rs.Dispatch)-1].UIDs), len(script), len(listing))
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
