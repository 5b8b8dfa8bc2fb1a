// Package netnstest is the kernel test harness: it builds the ownerwall
// binary once, runs lab scenarios in throwaway network and mount
// namespaces, and compares what the kernel did with what was expected.
//
// Kernel tests need root. Without it they skip, except under CI=true,
// where a skip is a failure.
package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownerwall/ownerwall/internal/lab"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// RequireRoot skips the test when not root, or fails it under CI=true.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		for _, c := range []string{"nft", "unshare", "nsenter", "setpriv", "ip"} {
			if _, err := exec.LookPath(c); err != nil {
				fail(t, "kernel test needs %s: %v", c, err)
			}
		}
		return
	}
	fail(t, "kernel test needs root (network namespaces)")
}

func fail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Binary builds cmd/ownerwall once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ownerwall-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ownerwall")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(goBin, "build", "-o", binPath, "github.com/ownerwall/ownerwall/cmd/ownerwall")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Run runs the scenario in fresh namespaces and returns the report.
func Run(t testing.TB, sc lab.Scenario) *lab.Report {
	t.Helper()
	RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := lab.Run(ctx, Binary(t), sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(sc.Attempts) {
		t.Fatalf("lab returned %d results for %d attempts", len(rep.Results), len(sc.Attempts))
	}
	return rep
}

// Expect runs the expectations' attempts (appended to sc's own) and fails
// the test, with a table and the live ruleset, for every attempt the
// kernel decided otherwise.
func Expect(t testing.TB, sc lab.Scenario, ex []lab.Expectation) *lab.Report {
	t.Helper()
	base := len(sc.Attempts)
	for _, e := range ex {
		sc.Attempts = append(sc.Attempts, e.Attempt)
	}
	rep := Run(t, sc)
	if rep.ApplyError != "" {
		t.Fatalf("apply failed: %s", rep.ApplyError)
	}
	var bad []string
	for i, e := range ex {
		r := rep.Results[base+i]
		if r.Observed != e.Expect {
			bad = append(bad, fmt.Sprintf("  %-18s -> %-28s %-30s expected %-6s saw %s (%s)", e.Who(), e.To, e.Label, e.Expect, r.Observed, r.Detail))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d attempts differ:\n%s\nruleset:\n%s", len(bad), len(ex), strings.Join(bad, "\n"), rep.Ruleset)
	}
	return rep
}
