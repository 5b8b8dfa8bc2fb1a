package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/ownerwall/ownerwall/internal/cli"
)

// profileMain is the `__profile` role, run inside a world: the ownerwall
// command line given after "--", in process, under the CPU profiler (what
// the product spends its own CPU on; time spent waiting for nft, getent or
// iptables-restore shows up as waits). With -trace and -ownerwall it then
// runs the same command line again with the real binary under
// strace -f, and writes when each process it started (worker, getent, nft,
// *tables-restore, *tables-save) ran: where the wall-clock time goes.
func profileMain(args []string) int {
	fs := flag.NewFlagSet("__profile", flag.ContinueOnError)
	cpu := fs.String("cpu", "", "CPU profile output")
	mem := fs.String("mem", "", "allocation profile output (after the command)")
	trace := fs.String("trace", "", "process timeline output (needs strace and -ownerwall)")
	ow := fs.String("ownerwall", "", "ownerwall binary, for -trace")
	before := fs.String("before", "", "shell command to run before each of the two runs (e.g. to rewrite /etc/group)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmdArgs := fs.Args()
	ctx := context.Background()
	if *before != "" {
		if out, err := exec.Command("sh", "-c", *before).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "-before: %v: %s\n", err, out)
			return 1
		}
	}
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
	code := cli.Main(ctx, cmdArgs, io.Discard, os.Stderr)
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
	fmt.Fprintf(os.Stderr, "ownerwall %s: exit %d, %.1f ms, %.1f MB allocated, heap ~%.1f MB\n",
		strings.Join(cmdArgs, " "), code, float64(wall.Microseconds())/1000, float64(ms.TotalAlloc)/(1<<20), float64(ms.HeapSys)/(1<<20))
	if *trace != "" && *ow != "" {
		if *before != "" {
			if out, err := exec.Command("sh", "-c", *before).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "-before: %v: %s\n", err, out)
				return 1
			}
		}
		if err := timeline(*ow, cmdArgs, *trace); err != nil {
			fmt.Fprintln(os.Stderr, "trace:", err)
			return 1
		}
	}
	return code
}

// timeline runs ownerwall under strace -f and writes, for every process
// of the run, when it started and how long it lived.
func timeline(ow string, args []string, out string) error {
	if _, err := exec.LookPath("strace"); err != nil {
		return errors.New("strace is not installed")
	}
	raw := out + ".strace"
	cmd := exec.Command("strace", append([]string{"-f", "-q", "-ttt", "--seccomp-bpf", "-e", "trace=execve", "-e", "signal=none", "-s", "64", "-o", raw, ow}, args...)...)
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("strace %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	data, err := os.ReadFile(raw)
	if err != nil {
		return err
	}
	type proc struct {
		pid        string
		what       string
		start, end float64
	}
	procs := map[string]*proc{}
	var order []*proc
	var t0 float64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) < 3 {
			continue
		}
		ts, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		if t0 == 0 {
			t0 = ts
		}
		p := procs[f[0]]
		if p == nil {
			p = &proc{pid: f[0], start: ts, end: ts}
			procs[f[0]] = p
			order = append(order, p)
		}
		switch {
		case strings.HasPrefix(f[2], "execve("):
			if _, argv, ok := strings.Cut(f[2], "["); ok {
				argv, _, _ = strings.Cut(argv, "]")
				p.what = strings.ReplaceAll(argv, `"`, "")
				p.start = ts
			}
		case strings.HasPrefix(f[2], "+++ exited"), strings.HasPrefix(f[2], "+++ killed"):
			p.end = ts
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%10s %10s  %s\n", "start ms", "ms", "process (strace -f; threads show as their own lines without a command)")
	for _, p := range order {
		if p.what == "" {
			continue // a thread, or a fork that did not exec
		}
		fmt.Fprintf(&b, "%10.1f %10.1f  %s\n", (p.start-t0)*1000, (p.end-p.start)*1000, clipText(p.what, 120))
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
