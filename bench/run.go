package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Results is everything one benchmark run measured.
type Results struct {
	Machine  Machine   `json:"machine"`
	Options  *Options  `json:"options"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Cases    []*Case   `json:"cases"`
}

// Case is one (N, shape): every configuration measured in the same run.
type Case struct {
	N     int   `json:"n"`
	Shape Shape `json:"shape"`
	// Rates are the connection rates (connect/read/close cycles per second)
	// of each configuration, one per run, in run order.
	Rates map[string][]float64 `json:"rates"`
	// Rate summarizes Rates; Ratio is, per run, the configuration's rate
	// over the no-firewall rate of the same run, summarized.
	Rate   map[string]Stats `json:"rate"`
	Ratio  map[string]Stats `json:"ratio"`
	Errors map[string]int64 `json:"client_errors,omitempty"`
	// Apply: per configuration (seed, nft, iptables).
	Apply map[string]*ApplyInfo `json:"apply"`
	// AddToGroup (shape B): milliseconds to re-apply after one account is
	// added to a group in /etc/group (per backend), and after it is
	// removed again.
	AddToGroup    map[string]Stats `json:"add_to_group_ms,omitempty"`
	RemoveFromGrp map[string]Stats `json:"remove_from_group_ms,omitempty"`
	AddToGroupCPU map[string]Stats `json:"add_to_group_cpu_ms,omitempty"` // user + system time of those applies
	// AddToGroupWatch (shape B): with `ownerwall watch` running, the time
	// from the end of the write of /etc/group to the account's first
	// successful connection (polled every 0.2 ms as that account);
	// WatchLoaded is watch's own account of the same changes (cause to
	// kernel), adds and removes.
	AddToGroupWatch map[string]Stats `json:"add_to_group_watch_ms,omitempty"`
	WatchLoaded     map[string]Stats `json:"watch_loaded_ms,omitempty"`
	Checks          []Check          `json:"checks"`
	// Background is the share of the machine's CPU that other processes
	// used during the kept samples; BusySamples counts the kept samples
	// above MaxBackground, Retried the samples taken again.
	Background  Stats  `json:"background"`
	BusySamples int    `json:"busy_samples"`
	Retried     int    `json:"retried_samples"`
	LoadAvg     string `json:"loadavg_after"`
}

// ApplyInfo is what loading one configuration cost.
type ApplyInfo struct {
	// ApplyMS: `ownerwall apply` on an empty namespace (read, resolve,
	// compile, render, load, list, record state), wall clock; for the seed
	// method, iptables-restore of its rules.
	ApplyMS float64 `json:"apply_ms"`
	// ReapplyMS: the same policy again, replacing the live ruleset.
	ReapplyMS  float64 `json:"reapply_ms,omitempty"`
	ApplyRSSKB int64   `json:"apply_max_rss_kb"` // apply and its children (nft, getent, *tables-restore)
	// ApplyCPUMS: user + system time of apply and everything it waited
	// for (worker, nft, getent, *tables-restore): the work, whatever else
	// the machine was doing.
	ApplyCPUMS  float64 `json:"apply_cpu_ms"`
	ExportCPUMS float64 `json:"export_cpu_ms,omitempty"`
	// ExportMS and ExportRSSKB: `ownerwall export`, i.e. read, resolve,
	// compile and render without the kernel: the compile's time and peak
	// memory.
	ExportMS    float64 `json:"export_ms,omitempty"`
	ExportRSSKB int64   `json:"export_max_rss_kb,omitempty"`
	ScriptBytes int64   `json:"script_bytes,omitempty"`
	// KernelMS: loading the exported script alone (`nft -f`, replacing
	// the live table), the kernel's and nft's share of an apply.
	KernelMS float64 `json:"kernel_ms,omitempty"`
	// ListMS: listing the live ruleset (`nft list table` / iptables-save),
	// which apply does to record what it loaded.
	ListMS float64 `json:"list_ms,omitempty"`
	// KernelBlindMS: the same load with NSS blind to the accounts (empty
	// /etc/passwd and /etc/group in a private mount namespace): nft and
	// the owner match of iptables look every numeric uid up as a user
	// name first, a scan of /etc/passwd per uid on a host with local
	// accounts.
	KernelBlindMS float64 `json:"kernel_blind_ms,omitempty"`
	// TimedOut: the seed's iptables-restore exceeded SeedTimeout (Note
	// says how the rules were loaded instead).
	TimedOut bool   `json:"timed_out,omitempty"`
	Note     string `json:"note,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Stats summarizes repeated measurements.
type Stats struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// Check is a sanity check that the configuration is live and means what
// the benchmark assumes: the measured uid gets through, a uid outside the
// policy is refused, an added account gets through.
type Check struct {
	Config string `json:"config"`
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Got    string `json:"got"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemMB     int    `json:"mem_mb"`
	Kernel    string `json:"kernel"`
	Nft       string `json:"nft"`
	Iptables  string `json:"iptables"`
	Go        string `json:"go"`
	Ownerwall string `json:"ownerwall_commit,omitempty"`
}

// Run runs the benchmark; progress goes to log.
func Run(ctx context.Context, opt *Options, log io.Writer) (*Results, error) {
	t, err := prepare(opt)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(t.dir)
	if opt.Profile != "" {
		if err := os.MkdirAll(opt.Profile, 0o755); err != nil {
			return nil, err
		}
		if opt.Profile, err = filepath.Abs(opt.Profile); err != nil {
			return nil, err
		}
	}
	res := &Results{Machine: machine(), Options: opt, Started: time.Now().UTC()}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			terminateWorlds()
		case <-done:
		}
	}()
	for _, shape := range opt.Shapes {
		for _, n := range opt.Ns {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "== shape %s, N=%d\n", shape, n)
			c, err := runCase(ctx, opt, t, n, shape, log)
			if err != nil {
				return nil, fmt.Errorf("shape %s, N=%d: %w", shape, n, err)
			}
			res.Cases = append(res.Cases, c)
		}
	}
	res.Finished = time.Now().UTC()
	return res, nil
}

// caseRun is the state of one case: its files and worlds.
type caseRun struct {
	opt       *Options
	t         *tools
	w         *World
	base      string
	worlds    map[string]*worldClient
	dirs      map[string]string
	serverPid map[string]int
	log       io.Writer
	c         *Case
}

func runCase(ctx context.Context, opt *Options, t *tools, n int, shape Shape, log io.Writer) (*Case, error) {
	cr := &caseRun{opt: opt, t: t, w: Generate(n, shape), log: log,
		worlds: map[string]*worldClient{}, dirs: map[string]string{}, serverPid: map[string]int{},
		c: &Case{N: n, Shape: shape, Rates: map[string][]float64{}, Rate: map[string]Stats{}, Ratio: map[string]Stats{},
			Errors: map[string]int64{}, Apply: map[string]*ApplyInfo{}}}
	cr.base = filepath.Join(t.dir, fmt.Sprintf("%s-%d", shape, n))
	defer func() {
		for _, w := range cr.worlds {
			w.close()
		}
		_ = os.RemoveAll(cr.base)
	}()
	if err := cr.files(); err != nil {
		return nil, err
	}
	for _, cfg := range opt.Configs {
		if err := cr.startWorld(cfg); err != nil {
			return nil, err
		}
	}
	for _, cfg := range opt.Configs {
		if err := cr.apply(cfg); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	cr.checks()
	if err := cr.measure(ctx); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if shape == ShapeB {
		if err := cr.addToGroup(); err != nil {
			return nil, err
		}
	}
	cr.profiles()
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		cr.c.LoadAvg = strings.TrimSpace(string(data))
	}
	return cr.c, nil
}

func (cr *caseRun) path(name string) string { return filepath.Join(cr.base, name) }

func (cr *caseRun) files() error {
	if err := os.MkdirAll(cr.base, 0o755); err != nil {
		return err
	}
	files := map[string]string{"policy.yaml": cr.w.Policy, "seed.rules": cr.w.Seed, "seed.nft": cr.w.SeedNft, "group.added": cr.w.GroupAdded, "group.orig": cr.w.Group}
	for name, content := range files {
		if err := os.WriteFile(cr.path(name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (cr *caseRun) startWorld(cfg string) error {
	dir := cr.path("world-" + cfg)
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o755); err != nil {
		return err
	}
	files := map[string]string{"passwd": cr.w.Passwd, "group": cr.w.Group,
		"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	wc, err := startWorld(cfg, cr.t.self)
	if err != nil {
		return err
	}
	cr.worlds[cfg], cr.dirs[cfg] = wc, dir
	server := append(cr.pinned("server"), cr.t.self, "__server", "-port", strconv.Itoa(Port), "-threads", strconv.Itoa(cr.opt.Conc))
	resp, err := wc.call(Request{Op: "setup", Dir: dir, Flavour: cr.opt.Flavour, Server: server})
	if err == nil && resp.Error != "" {
		err = fmt.Errorf("world %s: setup: %s", cfg, resp.Error)
	}
	cr.serverPid[cfg] = resp.Pid
	return err
}

// pinned is the prefix that places the client or the server on a CPU.
func (cr *caseRun) pinned(role string) []string {
	n := runtime.NumCPU()
	cpu := -1
	switch cr.opt.Pin {
	case "same":
		cpu = n - 1
	case "split":
		if n >= 2 {
			cpu = 0
			if role == "server" {
				cpu = 1
			}
		}
	}
	if cpu < 0 {
		return nil
	}
	return []string{"taskset", "-c", strconv.Itoa(cpu)}
}

func (cr *caseRun) ow(args ...string) []string { return append([]string{cr.t.ownerwall}, args...) }

// apply loads the configuration into its world and records what it cost.
func (cr *caseRun) apply(cfg string) error {
	wc, to := cr.worlds[cfg], cr.opt.Timeout
	policy := cr.path("policy.yaml")
	info := &ApplyInfo{}
	fail := func(err error) error {
		info.Error = err.Error()
		cr.c.Apply[cfg] = info
		fmt.Fprintf(cr.log, "   %-9s apply FAILED: %v\n", cfg, err)
		return nil // reported, the case goes on without it
	}
	switch cfg {
	case CfgNone:
		return nil
	case CfgHook:
		r, err := wc.run(to, "nft", "add table inet bench_hook; add chain inet bench_hook output { type filter hook output priority filter; policy accept; }")
		if err != nil {
			return fail(err)
		}
		info.ApplyMS = r.WallMS
	case CfgSeed:
		r, err := wc.run(cr.opt.SeedTimeout, "iptables-restore", cr.path("seed.rules"))
		if err != nil && strings.Contains(err.Error(), "timed out") {
			// The nf_tables flavour of iptables-restore slows down with
			// every rule of a chain. Load the same rules as nft sees them.
			info.Note = fmt.Sprintf("iptables-restore did not finish within %s; the same rules, as iptables-nft stores them, were loaded with nft -f, with NSS blind to the accounts", cr.opt.SeedTimeout)
			info.TimedOut = true
			err = cr.seedViaNft(wc)
		}
		if err != nil {
			return fail(err)
		}
		if !info.TimedOut {
			info.ApplyMS, info.ApplyRSSKB, info.ApplyCPUMS = r.WallMS, r.MaxRSSKB, r.UserMS+r.SysMS
		}
		if r, err = wc.run(to, "iptables-save", "-t", "filter"); err == nil {
			info.ListMS = r.WallMS
		}
	case CfgNft, CfgIptables:
		format := cfg
		script := cr.path("export." + cfg)
		r, err := wc.call(Request{Op: "exec", Args: cr.ow("export", "-f", policy, "--format", format), StdoutFile: script, Timeout: to})
		if err == nil && r.Error != "" {
			err = fmt.Errorf("export: %s", r.Error)
		}
		if err != nil {
			return fail(err)
		}
		info.ExportMS, info.ExportRSSKB, info.ExportCPUMS = r.WallMS, r.MaxRSSKB, r.UserMS+r.SysMS
		if st, err := os.Stat(script); err == nil {
			info.ScriptBytes = st.Size()
		}
		if r, err = wc.run(to, cr.ow("apply", "-f", policy, "--backend", cfg)...); err != nil {
			if !strings.Contains(err.Error(), "timed out") {
				return fail(err)
			}
			// Measure the packets anyway: load exactly what apply would
			// have loaded, with NSS blind to the accounts (see blind).
			info.TimedOut = true
			ms, err := cr.loadBlind(wc, cfg, script)
			if err != nil {
				return fail(fmt.Errorf("apply timed out after %s, and loading its export by hand failed: %w", to, err))
			}
			info.KernelBlindMS = ms
			info.Note = fmt.Sprintf("ownerwall apply did not finish within %s; the packets were measured on its export, loaded by hand with NSS blind to the accounts (%.1f s)", to, ms/1000)
			break
		}
		info.ApplyMS, info.ApplyRSSKB, info.ApplyCPUMS = r.WallMS, r.MaxRSSKB, r.UserMS+r.SysMS
		if info.ApplyMS > breakdownMax {
			info.Note = fmt.Sprintf("apply took over %s: re-apply and the load/list breakdown were not measured", time.Duration(breakdownMax)*time.Millisecond)
			break
		}
		if r, err = wc.run(to, cr.ow("apply", "-f", policy, "--backend", cfg)...); err != nil {
			return fail(err)
		}
		info.ReapplyMS = r.WallMS
		if cfg == CfgNft {
			if r, err = wc.call(Request{Op: "exec", Args: []string{"nft", "list", "table", "inet", "ownerwall"}, StdoutFile: os.DevNull, Timeout: to}); err == nil && r.Error == "" {
				info.ListMS = r.WallMS
			}
			// nft with the accounts in view calls getpwnam() per uid key,
			// reading the whole passwd file each time: quadratic, 9.5 s at
			// N = 10,000 and past any sensible bound at 100,000. Measured
			// up to nftSightedMax accounts only.
			if cr.c.N <= nftSightedMax {
				if r, err = wc.run(to, "nft", "-f", script); err == nil {
					info.KernelMS = r.WallMS
				}
			}
			if ms, err := cr.loadBlind(wc, cfg, script); err == nil {
				info.KernelBlindMS = ms
			}
		} else {
			if r, err = wc.call(Request{Op: "exec", Args: []string{"iptables-save", "-t", "filter"}, StdoutFile: os.DevNull, Timeout: to}); err == nil && r.Error == "" {
				info.ListMS = r.WallMS
			}
		}
	}
	cr.c.Apply[cfg] = info
	fmt.Fprintf(cr.log, "   %-9s cpu %8.1f ms\n", cfg, info.ApplyCPUMS)
	fmt.Fprintf(cr.log, "   %-9s apply %8.1f ms  reapply %8.1f ms  export %8.1f ms  kernel %8.1f ms  list %8.1f ms  export rss %6.1f MB  apply rss %6.1f MB\n",
		cfg, info.ApplyMS, info.ReapplyMS, info.ExportMS, info.KernelMS, info.ListMS, float64(info.ExportRSSKB)/1024, float64(info.ApplyRSSKB)/1024)
	return nil
}

// seedViaNft loads the seed rules as the nf_tables flavour of
// iptables-restore would have stored them (World.SeedNft) into the seed's
// world, after making sure nothing half-loaded is left there.
func (cr *caseRun) seedViaNft(wc *worldClient) error {
	if r, err := wc.run(time.Minute, "iptables", "--version"); err != nil || !strings.Contains(r.Stdout, "nf_tables") {
		return fmt.Errorf("seed: iptables-restore timed out (legacy flavour: no fallback): %v", err)
	}
	if cr.w.SeedNft == "" {
		return errors.New("seed: iptables-restore timed out, and these rules have no native nft form")
	}
	if _, err := wc.run(time.Minute, "nft", "flush", "ruleset"); err != nil {
		return err
	}
	// nft looks every numeric uid up as a user name first (getpwnam), a
	// scan of the 100k-line /etc/passwd per rule: load the rules where
	// NSS knows no users. The kernel gets the same rules.
	_, err := wc.run(cr.opt.Timeout, append(blindPrefix(), "nft", "-f", cr.path("seed.nft"))...)
	return err
}

// blindPrefix runs a command where NSS knows no users or groups.
func blindPrefix() []string {
	return []string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
		`mount --bind /dev/null /etc/passwd && mount --bind /dev/null /etc/group && exec "$@"`, "blind"}
}

// loadBlind loads an `ownerwall export` script into the world the way
// apply would, but with NSS blind to the accounts, and returns how long
// it took (ms). iptables: the IPv4 and the IPv6 part, each with --noflush.
func (cr *caseRun) loadBlind(wc *worldClient, cfg, script string) (float64, error) {
	to := cr.opt.Timeout
	if cfg == CfgNft {
		r, err := wc.run(to, append(blindPrefix(), "nft", "-f", script)...)
		return r.WallMS, err
	}
	data, err := os.ReadFile(script)
	if err != nil {
		return 0, err
	}
	v4, v6, ok := strings.Cut(string(data), "# ip6tables-restore\n")
	if !ok {
		return 0, errors.New("export: no IPv6 part")
	}
	total := 0.0
	for _, part := range []struct{ prog, text, file string }{{"iptables-restore", v4, script + ".v4"}, {"ip6tables-restore", v6, script + ".v6"}} {
		if err := os.WriteFile(part.file, []byte(part.text), 0o644); err != nil {
			return 0, err
		}
		r, err := wc.run(to, append(blindPrefix(), part.prog, "--noflush", part.file)...)
		if err != nil {
			return 0, err
		}
		total += r.WallMS
	}
	return total, nil
}

// breakdownMax (ms): past this first apply, the re-apply and the
// breakdown are skipped, to keep the run's length bounded.
const breakdownMax = 60000

// nftSightedMax bounds the N at which `nft -f` is timed with the account
// database in view (see the breakdown).
const nftSightedMax = 20000

// clientArgs runs the client as uid with primary gid and supplementary
// groups (none: --clear-groups), pinned to CPU 0.
func (cr *caseRun) clientArgs(uid, gid int, groups []int, extra ...string) []string {
	args := append(cr.pinned("client"), "setpriv", "--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(gid))
	if len(groups) == 0 {
		args = append(args, "--clear-groups")
	} else {
		gs := make([]string, len(groups))
		for i, g := range groups {
			gs[i] = strconv.Itoa(g)
		}
		args = append(args, "--groups", strings.Join(gs, ","))
	}
	args = append(args, "--", cr.t.self, "__client", "-port", strconv.Itoa(Port))
	return append(args, extra...)
}

func (cr *caseRun) sample(cfg string, uid, gid int, groups []int, extra ...string) (Sample, error) {
	var s Sample
	before, srv0 := busyTicks(), taskTicks(cr.serverPid[cfg])
	r, err := cr.worlds[cfg].run(cr.opt.Duration+time.Minute, cr.clientArgs(uid, gid, groups, extra...)...)
	after, srv1 := busyTicks(), taskTicks(cr.serverPid[cfg])
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		return s, fmt.Errorf("client output %q: %w", r.Stdout, err)
	}
	// What else ran meanwhile: CPU time of the whole machine (user,
	// system, steal) minus the client's and the server's, as a share of
	// all CPUs over the window.
	ours := (r.UserMS+r.SysMS)/1000 + float64(srv1-srv0)/clockTicks
	if wall := r.WallMS / 1000; wall > 0 && before >= 0 && after >= before {
		s.Background = max(0, (float64(after-before)/clockTicks-ours)/(float64(runtime.NumCPU())*wall))
	}
	return s, nil
}

// clockTicks is USER_HZ, the unit of /proc/stat and /proc/PID/stat.
const clockTicks = 100

// busyTicks is the machine's user + nice + system + steal time, all CPUs
// (interrupt and softirq time is left out: the traffic's own packets are
// processed there).
func busyTicks() int64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var sum int64
	for _, i := range []int{1, 2, 3, 8} { // user nice system steal
		v, _ := strconv.ParseInt(f[i], 10, 64)
		sum += v
	}
	return sum
}

// taskTicks is a process's user + system time, all its threads.
func taskTicks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of stat(5)
	k, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return u + k
}

// probe makes one connection attempt: "ok" or the error.
func (cr *caseRun) probe(cfg string, uid, gid int, groups []int) string {
	s, err := cr.sample(cfg, uid, gid, groups, "-once")
	switch {
	case err != nil:
		return "error: " + err.Error()
	case s.Count == 1:
		return "ok"
	}
	return s.FirstError
}

func (cr *caseRun) check(cfg, what string, ok bool, got string) {
	cr.c.Checks = append(cr.c.Checks, Check{Config: cfg, What: what, OK: ok, Got: got})
	if !ok {
		fmt.Fprintf(cr.log, "   CHECK FAILED %s: %s: got %s\n", cfg, what, got)
	}
}

func (cr *caseRun) applied(cfg string) bool {
	a := cr.c.Apply[cfg]
	return cfg == CfgNone || a != nil && a.Error == ""
}

// checks proves each live configuration means what the benchmark assumes.
func (cr *caseRun) checks() {
	w := cr.w
	for _, cfg := range cr.opt.Configs {
		if !cr.applied(cfg) {
			continue
		}
		got := cr.probe(cfg, w.ClientUID, w.ClientGID, w.ClientGroups)
		cr.check(cfg, fmt.Sprintf("uid %d (matched by the last rule) connects", w.ClientUID), got == "ok", got)
		open := cfg == CfgNone || cfg == CfgHook // no rules: everyone connects
		gap := w.ClientUID + 1                   // between two accounts, in no rule
		got = cr.probe(cfg, gap, gap, nil)
		if open {
			cr.check(cfg, fmt.Sprintf("uid %d connects (no firewall)", gap), got == "ok", got)
		} else {
			cr.check(cfg, fmt.Sprintf("uid %d (between two accounts, in no rule) is refused", gap), strings.Contains(got, "refused"), got)
		}
		got = cr.probe(cfg, NewbieUID, UsersGID, nil)
		if open {
			cr.check(cfg, fmt.Sprintf("uid %d connects (no firewall)", NewbieUID), got == "ok", got)
		} else {
			cr.check(cfg, fmt.Sprintf("uid %d (no rule) is refused", NewbieUID), strings.Contains(got, "refused"), got)
		}
	}
}

// measure takes the interleaved samples: in run r, every configuration
// once, starting with a different one each run.
func (cr *caseRun) measure(ctx context.Context) error {
	w := cr.w
	var live []string
	for _, cfg := range cr.opt.Configs {
		if cr.applied(cfg) {
			live = append(live, cfg)
		}
	}
	if cr.opt.Warmup > 0 {
		if cr.opt.Interleave == "slice" {
			if _, err := cr.multi(ctx, live, cr.opt.Warmup); err != nil {
				return err
			}
		} else {
			for _, cfg := range live {
				if _, err := cr.sample(cfg, w.ClientUID, w.ClientGID, w.ClientGroups, "-duration", cr.opt.Warmup.String(), "-conc", strconv.Itoa(cr.opt.Conc)); err != nil {
					return err
				}
			}
		}
	}
	var bg []float64
	for r := range cr.opt.Runs {
		if err := ctx.Err(); err != nil {
			return err
		}
		var line []string
		samples := map[string]Sample{}
		if cr.opt.Interleave == "slice" {
			ss, err := cr.quietMulti(ctx, live, cr.opt.Duration)
			if err != nil {
				return err
			}
			for i, cfg := range live {
				samples[cfg] = ss[i]
			}
		} else {
			for i := range live {
				cfg := live[(i+r)%len(live)]
				s, err := cr.quietSample(cfg)
				if err != nil {
					return err
				}
				samples[cfg] = s
			}
		}
		for _, cfg := range live {
			s := samples[cfg]
			bg = append(bg, s.Background)
			if s.Background > cr.opt.MaxBackground {
				cr.c.BusySamples++
			}
			cr.c.Rates[cfg] = append(cr.c.Rates[cfg], s.Rate)
			cr.c.Errors[cfg] += s.Errors
			line = append(line, fmt.Sprintf("%s %.0f/s", cfg, s.Rate))
		}
		fmt.Fprintf(cr.log, "   run %d: %s (other load %.0f%%)\n", r+1, strings.Join(line, ", "), 100*samples[live[0]].Background)
	}
	cr.c.Background = summarize(bg)
	for cfg, rates := range cr.c.Rates {
		cr.c.Rate[cfg] = summarize(rates)
		if cfg == CfgNone {
			continue
		}
		var ratios []float64
		for i, r := range rates {
			if none := cr.c.Rates[CfgNone]; i < len(none) && none[i] > 0 {
				ratios = append(ratios, r/none[i])
			}
		}
		cr.c.Ratio[cfg] = summarize(ratios)
	}
	for cfg, e := range cr.c.Errors {
		if e == 0 {
			delete(cr.c.Errors, cfg)
		}
	}
	return nil
}

// multi runs the multi-namespace client over the live configurations'
// worlds, each getting about d of the window, and returns one Sample per
// configuration (all with the same Background).
func (cr *caseRun) multi(ctx context.Context, live []string, d time.Duration) ([]Sample, error) {
	w := cr.w
	var ns, groups []string
	for _, cfg := range live {
		ns = append(ns, fmt.Sprintf("/proc/%d/ns/net", cr.worlds[cfg].cmd.Process.Pid))
	}
	for _, g := range w.ClientGroups {
		groups = append(groups, strconv.Itoa(g))
	}
	args := append(cr.pinned("client"), cr.t.self, "__mclient", "-port", strconv.Itoa(Port),
		"-ns", strings.Join(ns, ","), "-uid", strconv.Itoa(w.ClientUID), "-gid", strconv.Itoa(w.ClientGID),
		"-groups", strings.Join(groups, ","), "-duration", (d * time.Duration(len(live))).String(),
		"-slice", cr.opt.Slice.String(), "-conc", strconv.Itoa(cr.opt.Conc))
	ctx, cancel := context.WithTimeout(ctx, d*time.Duration(len(live))+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	srv0 := map[string]int64{}
	for _, cfg := range live {
		srv0[cfg] = taskTicks(cr.serverPid[cfg])
	}
	before, start := busyTicks(), time.Now()
	err := cmd.Run()
	after, wall := busyTicks(), time.Since(start).Seconds()
	if err != nil {
		return nil, fmt.Errorf("multi-namespace client: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var ms MultiSample
	if err := json.Unmarshal([]byte(stdout.String()), &ms); err != nil || len(ms.Rates) != len(live) {
		return nil, fmt.Errorf("multi-namespace client output %q: %v", stdout.String(), err)
	}
	ours := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	for _, cfg := range live {
		ours += float64(taskTicks(cr.serverPid[cfg])-srv0[cfg]) / clockTicks
	}
	bg := 0.0
	if wall > 0 && before >= 0 && after >= before {
		bg = max(0, (float64(after-before)/clockTicks-ours)/(float64(runtime.NumCPU())*wall))
	}
	out := make([]Sample, len(live))
	for i := range live {
		out[i] = Sample{Count: ms.Counts[i], Errors: ms.Errors[i], Seconds: ms.Seconds[i], Rate: ms.Rates[i], FirstError: ms.FirstError[i], Background: bg}
	}
	return out, nil
}

// quietMulti is multi, taken again (Retries times at most) while other
// processes used more than MaxBackground of the machine.
func (cr *caseRun) quietMulti(ctx context.Context, live []string, d time.Duration) ([]Sample, error) {
	var best []Sample
	for attempt := 0; ; attempt++ {
		ss, err := cr.multi(ctx, live, d)
		if err != nil {
			return nil, err
		}
		if attempt == 0 || ss[0].Background < best[0].Background {
			best = ss
		}
		if best[0].Background <= cr.opt.MaxBackground || attempt >= cr.opt.Retries {
			return best, nil
		}
		cr.c.Retried++
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
}

// quietSample takes one measuring sample; when something else used more
// than MaxBackground of the machine meanwhile, it waits a little and tries
// again (Retries times at most), keeping the quietest attempt.
func (cr *caseRun) quietSample(cfg string) (Sample, error) {
	w := cr.w
	var best Sample
	for attempt := 0; ; attempt++ {
		s, err := cr.sample(cfg, w.ClientUID, w.ClientGID, w.ClientGroups, "-duration", cr.opt.Duration.String(), "-conc", strconv.Itoa(cr.opt.Conc))
		if err != nil {
			return s, err
		}
		if attempt == 0 || s.Background < best.Background {
			best = s
		}
		if best.Background <= cr.opt.MaxBackground || attempt >= cr.opt.Retries {
			return best, nil
		}
		cr.c.Retried++
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
}

// addToGroup times the re-apply after newbie is added to TargetGroup (a
// one-line change of /etc/group), and after it is removed again.
func (cr *caseRun) addToGroup() error {
	cr.c.AddToGroup, cr.c.RemoveFromGrp, cr.c.AddToGroupCPU = map[string]Stats{}, map[string]Stats{}, map[string]Stats{}
	for _, cfg := range []string{CfgNft, CfgIptables} {
		if !cr.applied(cfg) || cr.worlds[cfg] == nil || cr.c.Apply[cfg].TimedOut {
			continue
		}
		wc := cr.worlds[cfg]
		group := filepath.Join(cr.dirs[cfg], "group")
		apply := cr.ow("apply", "-f", cr.path("policy.yaml"), "--backend", cfg)
		var adds, removes, addCPU []float64
		slow := false // one round only when an apply takes minutes
		for i := 0; i < cr.opt.AddRuns && !slow; i++ {
			for _, step := range []struct {
				from string
				into *[]float64
			}{{cr.path("group.added"), &adds}, {cr.path("group.orig"), &removes}} {
				if r, err := wc.call(Request{Op: "write", Path: group, From: step.from}); err != nil || r.Error != "" {
					return fmt.Errorf("rewrite /etc/group: %v %s", err, r.Error)
				}
				r, err := wc.run(cr.opt.Timeout, apply...)
				if err != nil {
					return err
				}
				*step.into = append(*step.into, r.WallMS)
				if r.WallMS > breakdownMax {
					slow = true
				}
				if step.into == &adds {
					addCPU = append(addCPU, r.UserMS+r.SysMS)
				}
				if i == 0 {
					got := cr.probe(cfg, NewbieUID, UsersGID, nil)
					if step.into == &adds {
						cr.check(cfg, fmt.Sprintf("uid %d connects once added to %s", NewbieUID, TargetGroup), got == "ok", got)
					} else {
						cr.check(cfg, fmt.Sprintf("uid %d is refused once removed from %s", NewbieUID, TargetGroup), strings.Contains(got, "refused"), got)
					}
				}
			}
		}
		cr.c.AddToGroup[cfg], cr.c.RemoveFromGrp[cfg] = summarize(adds), summarize(removes)
		cr.c.AddToGroupCPU[cfg] = summarize(addCPU)
		fmt.Fprintf(cr.log, "   %-9s add to group: median %.1f ms (min %.1f, max %.1f); remove: median %.1f ms\n",
			cfg, cr.c.AddToGroup[cfg].Median, cr.c.AddToGroup[cfg].Min, cr.c.AddToGroup[cfg].Max, cr.c.RemoveFromGrp[cfg].Median)
		if !slow {
			if err := cr.addToGroupWatching(cfg); err != nil {
				return err
			}
		}
	}
	return nil
}

// addToGroupWatching measures add-to-group with `ownerwall watch`
// running: from the end of the write of /etc/group to newbie's first
// connection that gets through, as newbie sees it.
func (cr *caseRun) addToGroupWatching(cfg string) error {
	if cr.c.AddToGroupWatch == nil {
		cr.c.AddToGroupWatch, cr.c.WatchLoaded = map[string]Stats{}, map[string]Stats{}
	}
	wc := cr.worlds[cfg]
	group := filepath.Join(cr.dirs[cfg], "group")
	if r, err := wc.call(Request{Op: "write", Path: group, From: cr.path("group.orig")}); err != nil || r.Error != "" {
		return fmt.Errorf("rewrite /etc/group: %v %s", err, r.Error)
	}
	start := Request{Op: "bg-start", Timeout: cr.opt.Timeout,
		Args: cr.ow("watch", "-f", cr.path("policy.yaml"), "--backend", cfg, "--json", "--interval", "0")}
	if r, err := wc.call(start); err != nil || r.Error != "" {
		return fmt.Errorf("ownerwall watch: %v %s", err, r.Error)
	}
	defer wc.call(Request{Op: "bg-stop"})
	var seen, loaded []float64
	for i := 0; i < cr.opt.AddRuns; i++ {
		r, err := wc.call(Request{Op: "change", Path: group, From: cr.path("group.added"), Timeout: cr.opt.Timeout,
			Args: cr.clientArgs(NewbieUID, UsersGID, nil, "-until-ok", "10s")})
		if err == nil && r.Error != "" {
			err = errors.New(r.Error)
		}
		if err != nil {
			return fmt.Errorf("add to group, watching: %w", err)
		}
		var s Sample
		if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil || s.Count != 1 {
			cr.check(cfg, fmt.Sprintf("uid %d connects once added to %s (watch)", NewbieUID, TargetGroup), false, r.Stdout)
			return nil
		}
		seen = append(seen, s.Seconds*1000)
		loaded = append(loaded, watchLoaded(r.Stderr))
		r, err = wc.call(Request{Op: "change", Path: group, From: cr.path("group.orig"), Timeout: cr.opt.Timeout})
		if err == nil && r.Error != "" {
			err = errors.New(r.Error)
		}
		if err != nil {
			return fmt.Errorf("remove from group, watching: %w", err)
		}
		loaded = append(loaded, watchLoaded(r.Stderr))
		if i == 0 {
			got := cr.probe(cfg, NewbieUID, UsersGID, nil)
			cr.check(cfg, fmt.Sprintf("uid %d is refused once removed from %s (watch)", NewbieUID, TargetGroup), strings.Contains(got, "refused"), got)
		}
	}
	cr.c.AddToGroupWatch[cfg], cr.c.WatchLoaded[cfg] = summarize(seen), summarize(loaded)
	fmt.Fprintf(cr.log, "   %-9s add to group, watch running: median %.1f ms (min %.1f, max %.1f) to the first connection; watch's own cause-to-kernel median %.1f ms\n",
		cfg, cr.c.AddToGroupWatch[cfg].Median, cr.c.AddToGroupWatch[cfg].Min, cr.c.AddToGroupWatch[cfg].Max, cr.c.WatchLoaded[cfg].Median)
	return nil
}

// watchLoaded is loaded_ms of one line of `ownerwall watch --json` (-1 when
// it has none).
func watchLoaded(line string) float64 {
	var r struct {
		LoadedMS float64 `json:"loaded_ms"`
		Error    string  `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.Error != "" {
		return -1
	}
	return r.LoadedMS
}

// profiles writes CPU profiles and process timelines of apply (in the
// world, after the measurements) when asked: the nft and iptables applies
// (re-applies of the same policy) and, for shape B, an add-to-group.
func (cr *caseRun) profiles() {
	if cr.opt.Profile == "" {
		return
	}
	for _, cfg := range []string{CfgNft, CfgIptables} {
		if !cr.applied(cfg) {
			continue
		}
		wc := cr.worlds[cfg]
		group := filepath.Join(cr.dirs[cfg], "group")
		runs := []struct{ name, before string }{{"reapply", ""}}
		if cr.w.Shape == ShapeB {
			// Back to the original group, then newbie added before each
			// of the two runs (profiled, traced).
			runs = append(runs, struct{ name, before string }{"add-to-group",
				fmt.Sprintf("cat %q > %q && %s apply -f %q --backend %s >/dev/null && cat %q > %q",
					cr.path("group.orig"), group, cr.t.ownerwall, cr.path("policy.yaml"), cfg, cr.path("group.added"), group)})
		}
		for _, run := range runs {
			name := fmt.Sprintf("%s-%s-%s-%d", run.name, cfg, cr.w.Shape, cr.w.N)
			args := []string{cr.t.self, "__profile", "-cpu", filepath.Join(cr.opt.Profile, name+".cpu.pprof"),
				"-mem", filepath.Join(cr.opt.Profile, name+".allocs.pprof"),
				"-trace", filepath.Join(cr.opt.Profile, name+".timeline.txt"), "-ownerwall", cr.t.ownerwall}
			if run.before != "" {
				args = append(args, "-before", run.before)
			}
			args = append(args, "--", "apply", "-f", cr.path("policy.yaml"), "--backend", cfg)
			if r, err := wc.run(cr.opt.Timeout, args...); err != nil {
				fmt.Fprintf(cr.log, "   profile %s: %v\n", name, err)
			} else {
				fmt.Fprintf(cr.log, "   profile %s: %s", name, r.Stderr)
			}
		}
	}
}

func summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Min: s[0], Median: med, Max: s[len(s)-1], N: len(s)}
}
