package nft

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/policy"
)

var update = flag.Bool("update", false, "rewrite the golden testdata/*.nft files")

// The fixed world every golden policy is compiled against.
const (
	goldenPasswd = `root:x:0:0:root:/root:/bin/sh
plebian:x:1000:1000::/home/plebian:/bin/sh
admin7:x:1001:1001::/home/admin7:/bin/sh
alice:x:1002:100::/home/alice:/bin/sh
bob:x:1003:100::/home/bob:/bin/sh
nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin
`
	goldenGroup = `root:x:0:
wheel:x:10:root,admin7
users:x:100:
plebian:x:1000:
admin7:x:1001:
nogroup:x:65534:
`
)

func goldenEnv(t *testing.T) compile.Env {
	t.Helper()
	st, err := ident.NewStatic(goldenPasswd, goldenGroup)
	if err != nil {
		t.Fatal(err)
	}
	st.HostAddrs = map[string][]netip.Addr{
		"db.example": {netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("2001:db8:1::77"), netip.MustParseAddr("203.0.113.5")},
	}
	st.UnitPaths = map[string]string{"stunnel.service": "system.slice/stunnel.service"}
	return compile.Env{Dir: st, Units: st, Hosts: st}
}

// compileFile compiles testdata/NAME.yaml; the policy's file name is the
// base name, so that the table comment does not depend on the checkout.
func compileFile(t *testing.T, path string) *ir.Ruleset {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(filepath.Base(path), src)
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	rs, err := compile.Compile(context.Background(), p, goldenEnv(t))
	if err != nil {
		t.Fatalf("compile:\n%v", err)
	}
	return rs
}

// noNftCheck lists the golden cases nft -c cannot check here.
var noNftCheck = map[string]string{
	// `socket cgroupv2 level 2 "system.slice/stunnel.service"` makes nft
	// resolve the path below /sys/fs/cgroup at parse time, even with -c: it
	// fails wherever that unit's cgroup does not exist, which says nothing
	// about the script.
	"unit": "nft resolves the cgroup path of unit principals below /sys/fs/cgroup",
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 9 {
		t.Fatalf("found %d golden policies, want at least 9", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			got := Script(compileFile(t, file))
			golden := strings.TrimSuffix(file, ".yaml") + ".nft"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Script differs from %s (go test -update rewrites it):\n%s", golden, lineDiff(string(want), got))
			}
			if why, skip := noNftCheck[name]; skip {
				t.Logf("nft -c not run: %s", why)
				return
			}
			nftCheck(t, golden)
		})
	}
}

// nftCheck runs `nft -c -f FILE` in a throwaway network namespace: it only
// checks the script, and could not touch the host's ruleset even if it did
// more. It needs root; under CI=true a missing root or nft fails the test.
func nftCheck(t *testing.T, file string) {
	t.Helper()
	skip := func(why string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("nft -c: %s (CI=true: not skipping)", why)
		}
		t.Skipf("nft -c: %s", why)
	}
	if os.Geteuid() != 0 {
		skip("not root")
	}
	for _, tool := range []string{"nft", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip(tool + " not found")
		}
	}
	out, err := exec.Command("unshare", "--net", "nft", "-c", "-f", file).CombinedOutput()
	if err != nil {
		t.Errorf("unshare --net nft -c -f %s: %v\n%s", file, err, out)
	}
}

// nftCheckScript writes script to a temporary file and checks it.
func nftCheckScript(t *testing.T, script string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "script.nft")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	nftCheck(t, f)
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
			if shown++; shown == 10 {
				break
			}
		}
	}
	return b.String()
}
