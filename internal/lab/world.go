package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ownerwall/ownerwall/internal/ident"
)

// world is the state of one lab run, inside its namespaces.
type world struct {
	self     string
	sc       Scenario
	dir      string
	accounts map[string]ident.Account
	remote   *exec.Cmd // holds strudel's network namespace
	procs    []*exec.Cmd
	cgroups  []string // created cgroup directories, deepest last
	cgRoot   string
	unitPath map[string]string // unit -> absolute cgroup directory
}

// Inside runs the scenario in the current namespaces, which the caller
// (Run) made fresh. It never touches a namespace it did not create, and
// removes the cgroup directories it made.
func Inside(ctx context.Context, self string, sc Scenario) (*Report, error) {
	w := &world{self: self, sc: sc, unitPath: map[string]string{}}
	defer w.close()
	if err := w.build(ctx); err != nil {
		return nil, err
	}
	rep := &Report{RulesetBefore: w.ruleset(ctx)}
	if err := w.apply(ctx); err != nil {
		rep.ApplyError = err.Error()
	}
	for _, a := range sc.LateAddrs {
		if err := run(ctx, "ip", "addr", "add", a, "dev", "lo"); err != nil {
			return nil, err
		}
	}
	for _, c := range sc.AfterApply {
		rep.Steps = append(rep.Steps, w.step(ctx, c))
	}
	rep.Results = w.attempts(ctx)
	rep.Ruleset = w.ruleset(ctx)
	return rep, nil
}

// ruleset is the whole live ruleset of this namespace: nft's view, then
// iptables-save and ip6tables-save of the lab's flavour.
func (w *world) ruleset(ctx context.Context) string {
	out, _ := exec.CommandContext(ctx, "nft", "list", "ruleset").CombinedOutput()
	var b strings.Builder
	b.Write(out)
	b.WriteString("# iptables-save\n")
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		o, _ := w.command(ctx, []string{save}).Output()
		b.Write(o)
	}
	return b.String()
}

func (w *world) expand(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.NewReplacer("$SELF", w.self, "$DIR", w.dir).Replace(a)
	}
	return out
}

func (w *world) command(ctx context.Context, args []string) *exec.Cmd {
	name := args[0]
	if own := filepath.Join(w.dir, "bin", name); !strings.Contains(name, "/") {
		if _, err := os.Stat(own); err == nil {
			name = own // exec resolves names with this process's PATH, not cmd.Env's
		}
	}
	cmd := exec.CommandContext(ctx, name, args[1:]...)
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Join(w.dir, "bin")+":"+os.Getenv("PATH"),
		"OWNERWALL_STATE_DIR="+filepath.Join(w.dir, "state"))
	return cmd
}

func (w *world) step(ctx context.Context, c []string) Step {
	args := w.expand(c)
	st := Step{Cmd: args}
	out, err := w.command(ctx, args).CombinedOutput()
	st.Output = string(out)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		st.Exit = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st.Exit = 128 + int(ws.Signal()) // as a shell reports it
		}
	case err != nil:
		st.Exit, st.Output = -1, err.Error()
	}
	st.Ruleset = w.ruleset(ctx)
	return st
}

func (w *world) build(ctx context.Context) error {
	var err error
	if w.dir, err = os.MkdirTemp("", "ownerwall-world-"); err != nil {
		return err
	}
	accts, err := ident.ParsePasswd(strings.NewReader(w.sc.Passwd))
	if err != nil {
		return fmt.Errorf("lab passwd: %w", err)
	}
	w.accounts = map[string]ident.Account{}
	for _, a := range accts {
		w.accounts[a.Name] = a
	}
	if err := run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		return err
	}
	hosts := "127.0.0.1 localhost\n::1 localhost\n"
	if w.sc.Remote {
		hosts += fmt.Sprintf("%s %s\n%s %s\n", RemoteV4, RemoteDNS, RemoteV6, RemoteDNS)
	}
	files := map[string]string{
		"/etc/passwd":        w.sc.Passwd,
		"/etc/group":         w.sc.Group,
		"/etc/hosts":         hosts + w.sc.Hosts,
		"/etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
	}
	for target, content := range files {
		if err := w.bind(target, content); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(w.dir, "bin"), 0o755); err != nil {
		return err
	}
	if f := w.sc.IptablesFlavour; f != "" {
		multi := "/usr/sbin/xtables-" + f + "-multi"
		if _, err := os.Stat(multi); err != nil {
			return fmt.Errorf("lab: iptables flavour %s: %w", f, err)
		}
		for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
			if err := os.Symlink(multi, filepath.Join(w.dir, "bin", n)); err != nil {
				return err
			}
		}
	}
	for name, content := range w.sc.Files {
		if err := os.WriteFile(filepath.Join(w.dir, filepath.Base(name)), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if w.sc.Remote {
		if err := w.buildRemote(ctx); err != nil {
			return err
		}
	}
	if err := w.mountCgroups(); err != nil {
		return err
	}
	if err := w.buildUnits(); err != nil {
		return err
	}
	for _, c := range w.sc.Setup {
		if out, err := w.command(ctx, w.expand(c)).CombinedOutput(); err != nil {
			return fmt.Errorf("lab: setup %v: %v: %s", c, err, strings.TrimSpace(string(out)))
		}
	}
	for _, l := range w.sc.Listeners {
		if err := w.listen(ctx, l); err != nil {
			return err
		}
	}
	return nil
}

// bind puts content over target, visible only in this mount namespace.
func (w *world) bind(target, content string) error {
	src := filepath.Join(w.dir, filepath.Base(target))
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(target); err != nil {
		return nil // nothing to cover on this host
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("lab: bind %s: %w", target, err)
	}
	return nil
}

func (w *world) buildRemote(ctx context.Context) error {
	own, _ := os.Readlink("/proc/self/ns/net")
	w.remote = exec.Command("unshare", "--net", "--", "sleep", "3600")
	if err := w.remote.Start(); err != nil {
		return fmt.Errorf("lab: start strudel: %w", err)
	}
	ns := w.remoteNS()
	for i := 0; ; i++ {
		if cur, _ := os.Readlink(ns); cur != "" && cur != own {
			break
		}
		if i > 200 {
			return fmt.Errorf("lab: strudel's namespace did not appear")
		}
		time.Sleep(5 * time.Millisecond)
	}
	pid := strconv.Itoa(w.remote.Process.Pid)
	in := func(args ...string) []string { return append([]string{"nsenter", "--net=" + ns, "--"}, args...) }
	steps := [][]string{
		{"ip", "link", "add", "owlan", "type", "veth", "peer", "name", "owpeer", "netns", pid},
		{"ip", "addr", "add", HostV4 + "/24", "dev", "owlan"},
		{"ip", "-6", "addr", "add", HostV6 + "/64", "dev", "owlan", "nodad"},
		{"ip", "link", "set", "owlan", "up"},
		in("ip", "link", "set", "lo", "up"),
		in("ip", "addr", "add", RemoteV4+"/24", "dev", "owpeer"),
		in("ip", "-6", "addr", "add", RemoteV6+"/64", "dev", "owpeer", "nodad"),
		in("ip", "link", "set", "owpeer", "up"),
		// strudel answers every datagram to a closed port with an ICMP
		// error: rate limits would turn quick attempts into timeouts.
		in("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"),
		{"sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"},
		// A neighbour solicitation sent while the peer's end was still
		// coming up is lost; retry after 50 ms rather than the default 1 s.
		{"sysctl", "-qw", "net.ipv6.neigh.owlan.retrans_time_ms=50"},
		in("sysctl", "-qw", "net.ipv6.neigh.owpeer.retrans_time_ms=50"),
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	// Ready when strudel answers in both families: a datagram to its
	// discard port comes back as ICMP port unreachable once the link is up
	// and neighbours are resolved.
	for _, addr := range []string{RemoteV4 + ":9", "[" + RemoteV6 + "]:9"} {
		for i := 0; ; i++ {
			if obs, _ := Probe(ctx, "udp", addr, 0, 100*time.Millisecond); obs == "reject" {
				break
			}
			if i > 50 {
				return fmt.Errorf("lab: strudel does not answer at %s", addr)
			}
		}
	}
	return nil
}

func (w *world) remoteNS() string {
	return fmt.Sprintf("/proc/%d/ns/net", w.remote.Process.Pid)
}

// buildUnits creates a cgroup per unit under a lab-private directory and a
// stand-in systemctl that reports them.
func (w *world) buildUnits() error {
	if len(w.sc.Units) == 0 {
		return nil
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			w.cgRoot = root
			break
		}
	}
	if w.cgRoot == "" {
		return fmt.Errorf("lab: no cgroup v2 hierarchy")
	}
	base := fmt.Sprintf("ownerwall-lab-%d", os.Getpid())
	var script strings.Builder
	script.WriteString("#!/bin/sh\n# stand-in systemctl: show --property=ControlGroup --value -- UNIT\nfor u; do :; done\ncase \"$u\" in\n")
	names := make([]string, 0, len(w.sc.Units))
	for n := range w.sc.Units {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		rel := base + "/" + strings.Trim(w.sc.Units[name], "/")
		parts := strings.Split(rel, "/")
		for i := range parts {
			dir := filepath.Join(w.cgRoot, filepath.Join(parts[:i+1]...))
			if err := os.Mkdir(dir, 0o755); err == nil {
				w.cgroups = append(w.cgroups, dir)
			} else if !os.IsExist(err) {
				return fmt.Errorf("lab: cgroup: %w", err)
			}
		}
		w.unitPath[name] = filepath.Join(w.cgRoot, rel)
		fmt.Fprintf(&script, "  %q) echo /%s ;;\n", name, rel)
	}
	script.WriteString("  *) echo ;;\nesac\n")
	return os.WriteFile(filepath.Join(w.dir, "bin", "systemctl"), []byte(script.String()), 0o755)
}

// mountCgroups gives the lab the cgroup layout the scenario asks for, in
// its own mount namespace: the host's mounts are not touched.
func (w *world) mountCgroups() error {
	switch w.sc.CgroupLayout {
	case "":
		return nil
	case "unified":
		return unix.Mount("none", "/sys/fs/cgroup", "cgroup2", 0, "")
	case "hybrid":
		if err := unix.Mount("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "mode=755"); err != nil {
			return fmt.Errorf("lab: cgroup tmpfs: %w", err)
		}
		if err := os.Mkdir("/sys/fs/cgroup/unified", 0o755); err != nil {
			return err
		}
		return unix.Mount("none", "/sys/fs/cgroup/unified", "cgroup2", 0, "")
	}
	return fmt.Errorf("lab: unknown cgroup layout %q", w.sc.CgroupLayout)
}

// asUser prefixes cmd so it runs as the account, with its groups.
func (w *world) asUser(user, gid string, cmd []string) ([]string, error) {
	if uid, err := strconv.Atoi(user); err == nil {
		pre := []string{"setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups", "--"}
		if uid == 0 {
			return cmd, nil
		}
		return append(pre, cmd...), nil
	}
	if user == "" || user == "root" && gid == "" {
		return cmd, nil
	}
	a, ok := w.accounts[user]
	if !ok {
		return nil, fmt.Errorf("lab: no account %q in the scenario", user)
	}
	pre := []string{"setpriv", "--reuid=" + strconv.Itoa(int(a.UID))}
	if gid != "" {
		pre = append(pre, "--regid="+gid, "--clear-groups")
	} else {
		pre = append(pre, "--regid="+strconv.Itoa(int(a.GID)), "--init-groups")
	}
	return append(append(pre, "--"), cmd...), nil
}

func (w *world) listen(ctx context.Context, l Listener) error {
	args := []string{w.self, "__listen", "--proto", l.Proto, "--port", strconv.Itoa(l.Port)}
	var err error
	if l.Where == "remote" {
		args = append([]string{"nsenter", "--net=" + w.remoteNS(), "--"}, args...)
	} else if args, err = w.asUser(l.User, "", args); err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: listener %+v: %w", l, err)
	}
	w.procs = append(w.procs, cmd)
	if err := WaitReady(ctx, stdout, 5*time.Second); err != nil {
		return fmt.Errorf("lab: listener %+v: %w", l, err)
	}
	return nil
}

func (w *world) apply(ctx context.Context) error {
	if w.sc.Policy == "" {
		return nil // the scenario starts with nothing applied
	}
	name := w.sc.PolicyName
	if name == "" {
		name = "policy.yaml"
	}
	file := filepath.Join(w.dir, filepath.Base(name))
	if err := os.WriteFile(file, []byte(w.sc.Policy), 0o644); err != nil {
		return err
	}
	cmd := w.command(ctx, append([]string{w.self, "apply", "-f", file}, w.sc.ApplyArgs...))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (w *world) attempts(ctx context.Context) []Result {
	timeout := w.sc.TimeoutMS
	if timeout <= 0 {
		timeout = 400
	}
	results := make([]Result, len(w.sc.Attempts))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, a := range w.sc.Attempts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := w.attempt(ctx, a, timeout)
			if strings.HasSuffix(a.To, "/udp") && r.Observed == "drop" && r.Detail == "timeout" {
				// A UDP answer needs the server process to run: on a busy
				// machine silence may be slowness. Ask once more, longer.
				r = w.attempt(ctx, a, 3*timeout)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	return results
}

func (w *world) attempt(ctx context.Context, a Attempt, timeoutMS int) Result {
	res := Result{Attempt: a}
	args := []string{w.self, "__probe", "--to", a.To, "--timeout", fmt.Sprintf("%dms", timeoutMS)}
	if a.SrcPort != 0 {
		args = append(args, "--src-port", strconv.Itoa(a.SrcPort))
	}
	var err error
	switch {
	case a.From == "remote":
		args = append([]string{"nsenter", "--net=" + w.remoteNS(), "--"}, args...)
	default:
		user := a.User
		if a.UID != 0 {
			user = strconv.Itoa(a.UID)
		}
		if args, err = w.asUser(user, a.Gid, args); err != nil {
			res.Observed, res.Detail = "error", err.Error()
			return res
		}
		if a.Unit != "" {
			dir, ok := w.unitPath[a.Unit]
			if !ok {
				res.Observed, res.Detail = "error", "unknown unit "+a.Unit
				return res
			}
			args = append([]string{"sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir}, args...)
		}
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	var pr struct{ Observed, Detail string }
	if jerr := json.Unmarshal(out, &pr); jerr != nil || err != nil {
		res.Observed, res.Detail = "error", fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
		return res
	}
	res.Observed, res.Detail = pr.Observed, pr.Detail
	return res
}

func (w *world) close() {
	for _, p := range w.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	if w.remote != nil {
		_ = w.remote.Process.Kill()
		_ = w.remote.Wait()
	}
	for i := len(w.cgroups) - 1; i >= 0; i-- {
		_ = os.Remove(w.cgroups[i])
	}
	if w.dir != "" {
		_ = os.RemoveAll(w.dir)
	}
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// WaitReady waits for a server started by the lab to print "ready" on r,
// then drains r in the background.
func WaitReady(ctx context.Context, r io.Reader, timeout time.Duration) error {
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case err := <-ready:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("not ready after %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
