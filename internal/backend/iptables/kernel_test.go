package iptables

// Tests against the real iptables-restore and kernel. Each runs its body in
// a child process (this test binary again) inside a throwaway network and
// mount namespace made by unshare(1), once per flavour: nothing here ever
// touches the firewall of the machine's own network namespace. They need
// root; without it they skip, unless CI=true, where they fail.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ownerwall/ownerwall/internal/ir"
)

const (
	childEnv  = "OWNERWALL_IPTABLES_TEST_FLAVOUR"    // set in the child: the flavour to use
	parentEnv = "OWNERWALL_IPTABLES_TEST_PARENT_NET" // the parent's network namespace
)

// flavours maps each flavour to the multi-call binary the PATH symlinks
// point at.
var flavours = []struct{ name, multi string }{
	{"legacy", "xtables-legacy-multi"},
	{"nf_tables", "xtables-nft-multi"},
}

var programs = []string{"iptables", "iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save"}

// needs skips the test when ok is false, or fails it when CI=true.
func needs(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run with CI=true: %s", why)
	}
	t.Skip(why)
}

func lookMulti(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed", name)
}

// inNamespaces runs body in a child process inside a fresh network and
// mount namespace, once per flavour, with PATH leading to symlinks named
// iptables, iptables-restore, ... pointing at that flavour's binary.
func inNamespaces(t *testing.T, body func(t *testing.T, flavour string)) {
	if fl := os.Getenv(childEnv); fl != "" {
		mustBePrivateNetns(t)
		usePath(t, fl)
		body(t, fl)
		return
	}
	needs(t, os.Geteuid() == 0, "needs root: network namespaces and netfilter")
	_, err := exec.LookPath("unshare")
	needs(t, err == nil, "unshare(1) is not installed")
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	name := t.Name()
	for _, fl := range flavours {
		t.Run(fl.name, func(t *testing.T) {
			_, err := lookMulti(fl.multi)
			needs(t, err == nil, fmt.Sprint(err))
			cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "--",
				os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+fl.name, parentEnv+"="+self)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
				t.Fatalf("in a namespace with %s: %v\n%s", fl.multi, err, out)
			}
			if testing.Verbose() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}

// mustBePrivateNetns refuses to go on unless this process is in a network
// namespace of its own: not the parent test's, not PID 1's.
func mustBePrivateNetns(t *testing.T) {
	mine, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	pid1, _ := os.Readlink("/proc/1/ns/net")
	if mine == os.Getenv(parentEnv) || mine == pid1 || os.Getenv(parentEnv) == "" {
		t.Fatalf("refusing to touch the firewall: not in a private network namespace (%s)", mine)
	}
}

func usePath(t *testing.T, flavour string) {
	var multi string
	for _, fl := range flavours {
		if fl.name == flavour {
			multi = fl.multi
		}
	}
	bin, err := lookMulti(multi)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range programs {
		if err := os.Symlink(bin, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	got, err := Flavour(context.Background())
	if err != nil || got != flavour {
		t.Fatalf("Flavour() = %q, %v; want %q", got, err, flavour)
	}
}

// TestKernelRestoreGolden feeds every golden file to the real
// iptables-restore / ip6tables-restore --test --noflush, then loads it for
// real and checks that iptables-save shows ownerwall's chains exactly as
// rendered (the rendering is in iptables-save's canonical form), and that
// Flush removes them.
func TestKernelRestoreGolden(t *testing.T) {
	inNamespaces(t, func(t *testing.T, flavour string) {
		ctx := context.Background()
		files, _ := filepath.Glob("testdata/*.v[46]")
		if len(files) < 20 {
			t.Fatalf("only %d golden files", len(files))
		}
		cleanup := makeUnitCgroups(t)
		defer cleanup()
		for _, file := range files {
			f := families[0]
			if strings.HasSuffix(file, ".v6") {
				f = families[1]
			}
			text := readFile(t, file)
			if err := restore(ctx, f, text, true); err != nil {
				t.Errorf("%s --test: %s: %v", f.restore, file, err)
				continue
			}
			if strings.Contains(file, "units.") && !haveUnitCgroups {
				t.Logf("%s: no cgroup v2 here, tested but not loaded", file)
				continue
			}
			if err := restore(ctx, f, text, false); err != nil {
				t.Errorf("%s: %s: %v", f.restore, file, err)
				continue
			}
			st, err := live(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			want := parseSave(strings.Replace(text, "-I OUTPUT 1 -j OWNERWALL", "-A OUTPUT -j OWNERWALL", 1))
			if d := stateDiff(want, st); d != "" {
				t.Errorf("%s: iptables-save shows something else than the rendering: %s", file, d)
			}
			if err := Flush(ctx); err != nil {
				t.Fatalf("Flush after %s: %v", file, err)
			}
			assertClean(t, ctx)
		}
		t.Logf("%s: %d golden files tested and loaded", flavour, len(files))
	})
}

// TestKernelLoadFlush loads rulesets over foreign rules, twice, replaces
// them with a smaller one, repairs a missing or doubled jump, rolls back
// when one family fails, and flushes, checking each time that foreign
// chains and rules are untouched and in order.
func TestKernelLoadFlush(t *testing.T) {
	inNamespaces(t, func(t *testing.T, flavour string) {
		ctx := context.Background()
		cases := goldenCases(t)
		find := func(name string) *ir.Ruleset {
			for _, c := range cases {
				if c.name == name {
					return compileCase(t, c)
				}
			}
			t.Fatalf("no case %s", name)
			return nil
		}
		big, small := find("uid-ranges"), find("example")

		for _, f := range families {
			dst := "192.0.2.1"
			if f.v6 {
				dst = "2001:db8::1"
			}
			cmd(t, f.ipt, "-N", "FOREIGN")
			cmd(t, f.ipt, "-A", "FOREIGN", "-p", "tcp", "--dport", "9", "-j", "REJECT")
			cmd(t, f.ipt, "-A", "OUTPUT", "-d", dst, "-j", "ACCEPT")
			cmd(t, f.ipt, "-A", "OUTPUT", "-j", "FOREIGN")
			cmd(t, f.ipt, "-P", "FORWARD", "DROP")
		}
		before := foreignAll(t)
		if err := Flush(ctx); err != nil {
			t.Fatalf("Flush with nothing loaded: %v", err)
		}

		for i := range 2 {
			if err := Load(ctx, big); err != nil {
				t.Fatalf("Load #%d: %v", i+1, err)
			}
			assertLoaded(t, ctx, big, before)
		}
		if err := Load(ctx, small); err != nil {
			t.Fatalf("Load of a smaller ruleset: %v", err)
		}
		assertLoaded(t, ctx, small, before) // the big one's chains are gone

		// A jump deleted by hand comes back; a doubled one is undone.
		cmd(t, "iptables", "-D", "OUTPUT", "-j", MainChain)
		cmd(t, "ip6tables", "-A", "OUTPUT", "-j", MainChain)
		if err := Load(ctx, small); err != nil {
			t.Fatal(err)
		}
		assertLoaded(t, ctx, small, before)

		// One family fails: the other is put back as it was.
		if err := Load(ctx, big); err != nil {
			t.Fatal(err)
		}
		var gone string // a chain of big that small has not
		smallNames := desiredState(build(small, true)).names()
		for _, c := range build(big, true) {
			if !smallNames[c.name] {
				gone = c.name
			}
		}
		cmd(t, "ip6tables", "-A", "FOREIGN", "-j", gone) // now -X of it fails
		err := Load(ctx, small)
		if err == nil {
			t.Fatalf("Load succeeded although FOREIGN still jumps to %s", gone)
		}
		t.Logf("expected failure: %v", err)
		for _, f := range families {
			st, lerr := live(ctx, f)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if d := stateDiff(desiredState(build(big, f.v6)), st); d != "" {
				t.Errorf("%s after a failed Load: not the previous ruleset: %s", f.name, d)
			}
		}
		if Flush(ctx) == nil {
			t.Error("Flush succeeded although FOREIGN still jumps to an ownerwall chain")
		}
		cmd(t, "ip6tables", "-D", "FOREIGN", "-j", gone)
		assertLoaded(t, ctx, big, before)

		// Snapshot and LoadScript: back to a snapshot, over another ruleset.
		snap, err := Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		listing, err := Listing(ctx)
		if err != nil || listing == "" || !strings.Contains(snap, listing) {
			t.Errorf("Listing = %q, %v; not in the snapshot:\n%s", listing, err, snap)
		}
		if err := Load(ctx, small); err != nil {
			t.Fatal(err)
		}
		if err := LoadScript(ctx, snap); err != nil {
			t.Fatalf("LoadScript(snapshot): %v", err)
		}
		assertLoaded(t, ctx, big, before)
		if err := LoadScript(ctx, Script(small)); err != nil {
			t.Fatalf("LoadScript(Script): %v", err)
		}
		assertLoaded(t, ctx, small, before)
		if err := LoadScript(ctx, "table inet ownerwall {}\n"); err == nil {
			t.Error("LoadScript took an nft script")
		}
		assertLoaded(t, ctx, small, before)

		// Counters: uid 1000's SYN to port 80 is dropped by rule 3 and
		// counted for it (over IPv4 and IPv6).
		cmd(t, "ip", "link", "set", "lo", "up")
		for _, addr := range []string{"127.0.0.1", "::1"} {
			_ = exec.Command("timeout", "1", "setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
				"bash", "-c", "exec 3<>/dev/tcp/"+addr+"/80").Run()
		}
		cs, err := Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("counters: %+v", cs)
		counted := false
		for _, c := range cs {
			if c.Rule < 1 || c.Rule > len(small.Rules) || c.Name != small.Rules[c.Rule-1].Name {
				t.Errorf("counter %+v does not name its rule", c)
			}
			counted = counted || c.Rule == 3 && c.Packets >= 2
		}
		if !counted {
			t.Errorf("uid 1000's SYNs to port 80, IPv4 and IPv6, are not counted for rule 3: %+v", cs)
		}

		// Nothing loaded: the snapshot is one that flushes.
		if err := Flush(ctx); err != nil {
			t.Fatal(err)
		}
		assertClean(t, ctx)
		empty, err := Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := Load(ctx, small); err != nil {
			t.Fatal(err)
		}
		if err := LoadScript(ctx, empty); err != nil {
			t.Fatalf("LoadScript(empty snapshot): %v", err)
		}
		assertClean(t, ctx)
		if after := foreignAll(t); after != before {
			t.Errorf("foreign rules changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if err := Flush(ctx); err != nil {
			t.Fatalf("second Flush: %v", err)
		}
		t.Logf("%s: foreign rules kept:\n%s", flavour, before)
	})
}

func cmd(t *testing.T, prog string, args ...string) {
	t.Helper()
	if out, err := exec.Command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", prog, strings.Join(args, " "), err, out)
	}
}

func save(t *testing.T, f family) string {
	t.Helper()
	out, err := exec.Command(f.save, "-t", "filter").Output()
	if err != nil {
		t.Fatalf("%s: %v", f.save, err)
	}
	return string(out)
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// foreignAll is both families' filter tables without ownerwall: every
// other chain, policy and rule, in iptables-save's order.
func foreignAll(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, f := range families {
		fmt.Fprintf(&b, "# %s\n", f.name)
		for _, l := range strings.Split(save(t, f), "\n") {
			switch {
			case strings.HasPrefix(l, "#"), l == "":
			case strings.HasPrefix(l, ":"):
				name, _, _ := strings.Cut(l[1:], " ")
				if !own(name) {
					b.WriteString(counters.ReplaceAllString(l, "[0:0]") + "\n")
				}
			case strings.HasPrefix(l, "-A "):
				name, rule, _ := strings.Cut(l[3:], " ")
				if !own(name) && !(name == "OUTPUT" && rule == "-j "+MainChain) {
					b.WriteString(l + "\n")
				}
			default:
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

// assertLoaded checks, in both families: ownerwall's chains are exactly
// rs's, one jump enters them and it is OUTPUT's first rule, and everything
// else is as before.
func assertLoaded(t *testing.T, ctx context.Context, rs *ir.Ruleset, before string) {
	t.Helper()
	for _, f := range families {
		st, err := live(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if d := stateDiff(desiredState(build(rs, f.v6)), st); d != "" {
			t.Errorf("%s: %s", f.name, d)
		}
		var output []string
		for _, l := range strings.Split(save(t, f), "\n") {
			if strings.HasPrefix(l, "-A OUTPUT ") {
				output = append(output, l)
			}
		}
		if len(output) == 0 || output[0] != "-A OUTPUT -j "+MainChain || slices.Index(output[1:], "-A OUTPUT -j "+MainChain) >= 0 {
			t.Errorf("%s: want exactly one jump to OWNERWALL, first in OUTPUT; OUTPUT is:\n%s", f.name, strings.Join(output, "\n"))
		}
	}
	if after := foreignAll(t); after != before {
		t.Errorf("foreign rules changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func assertClean(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, f := range families {
		if s := save(t, f); strings.Contains(s, MainChain) {
			t.Errorf("%s: ownerwall is still there after Flush:\n%s", f.name, s)
		}
	}
	if s, err := Listing(ctx); err != nil || s != "" {
		t.Errorf("Listing after Flush = %q, %v", s, err)
	}
}

// stateDiff compares ownerwall's chains and jumps: same names, same rules.
func stateDiff(want, got state) string {
	if want.jumps != got.jumps {
		return fmt.Sprintf("%d jumps, want %d", got.jumps, want.jumps)
	}
	g := map[string][]string{}
	for _, c := range got.chains {
		g[c.name] = c.rules
	}
	if len(g) != len(want.chains) {
		var names []string
		for _, c := range got.chains {
			names = append(names, c.name)
		}
		return fmt.Sprintf("%d chains %v, want %d", len(g), names, len(want.chains))
	}
	for _, c := range want.chains {
		rules, ok := g[c.name]
		if !ok {
			return "chain " + c.name + " is missing"
		}
		for i := range max(len(rules), len(c.rules)) {
			var a, b string
			if i < len(c.rules) {
				a = c.rules[i]
			}
			if i < len(rules) {
				b = rules[i]
			}
			if a != b {
				return fmt.Sprintf("chain %s rule %d:\n want %q\n got  %q", c.name, i+1, a, b)
			}
		}
	}
	return ""
}

var haveUnitCgroups bool

// makeUnitCgroups creates the cgroups units.v4/v6 match (xt_cgroup resolves
// paths when a rule is loaded) and returns what removes them again.
func makeUnitCgroups(t *testing.T) func() {
	var root string
	for _, dir := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			root = dir
			break
		}
	}
	if root == "" {
		needs(t, false, "no cgroup v2 hierarchy for the unit rules")
		return func() {}
	}
	var made []string
	paths := make([]string, 0, len(testUnits))
	for _, p := range testUnits {
		paths = append(paths, p)
	}
	slices.Sort(paths) // parents first
	for _, p := range paths {
		dir := root
		for _, part := range strings.Split(p, "/") {
			dir = filepath.Join(dir, part)
			if _, err := os.Stat(dir); err == nil {
				continue
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Logf("cannot create cgroup %s: %v", dir, err)
				return func() { removeAll(made) }
			}
			made = append(made, dir)
		}
	}
	haveUnitCgroups = true
	return func() { removeAll(made) }
}

func removeAll(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}
