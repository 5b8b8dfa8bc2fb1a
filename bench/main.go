// Command bench measures what ownerwall costs: new TCP connections per
// second to a local listener, as a uid that the last rule matches, under no
// firewall, the seed articles' method (one iptables owner rule per account),
// ownerwall's nft backend and ownerwall's iptables backend; apply time,
// add-to-group time and the peak memory of compile, for N accounts in two
// policy shapes. See docs/performance.md.
//
//	sudo go run ./bench                 # the full benchmark (N = 10 .. 100000)
//	sudo go run ./bench -quick          # CI smoke: N = 10, 100, short windows
//	sudo go run ./bench -n 10000 -shapes B -runs 7 -json > out.json
//
// Everything that loads rules or makes traffic runs in throwaway network and
// mount namespaces (unshare(1)); the host's own ruleset is never touched.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ownerwall/ownerwall/internal/cli"
)

func main() {
	if code, ok := runRole(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runRole runs one of the re-executed roles, named by the first argument.
func runRole(args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "__world":
		return worldMain(args[1:]), true
	case "__server":
		return serverMain(args[1:]), true
	case "__client":
		return clientMain(args[1:]), true
	case "__mclient":
		return mclientMain(args[1:]), true
	case "__profile":
		return profileMain(args[1:]), true
	case "__work":
		// ownerwall's detached worker, when __profile runs ownerwall's
		// command line in this binary.
		return cli.Main(context.Background(), args, os.Stdout, os.Stderr), true
	}
	return 0, false
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if opt.From != "" {
		data, err := os.ReadFile(opt.From)
		var res Results
		if err == nil {
			err = json.Unmarshal(data, &res)
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench: -from:", err)
			return 1
		}
		WriteTables(stdout, &res)
		return 0
	}
	if opt.Write != "" {
		if err := writeWorlds(opt); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		return 0
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "bench: needs root (it builds network namespaces; the host's firewall is never touched)")
		return 2
	}
	// An interrupt cancels the run: the worlds are closed, and they kill
	// what they started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, opt, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if opt.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return 1
		}
		return 0
	}
	WriteTables(stdout, res)
	return 0
}

// Options are the benchmark's knobs.
type Options struct {
	Ns       []int         `json:"n"`
	Shapes   []Shape       `json:"shapes"`
	Configs  []string      `json:"configs"`
	Duration time.Duration `json:"duration_ns"` // one sample's window
	Warmup   time.Duration `json:"warmup_ns"`
	Runs     int           `json:"runs"` // samples per configuration
	// Interleave: "slice" measures every configuration in one client
	// process that switches between the worlds every Slice; "process"
	// runs one client process per sample (setpriv), configurations in turn.
	Interleave string        `json:"interleave"`
	Slice      time.Duration `json:"slice_ns"`
	AddRuns    int           `json:"add_runs"` // add-to-group repetitions
	Conc       int           `json:"conc"`     // client connections in flight
	// Pin: "same" runs client and server on one CPU (the last), "split"
	// the client on CPU 0 and the server on CPU 1, "none" lets the
	// scheduler place them.
	Pin     string        `json:"pin"`
	Flavour string        `json:"iptables_flavour"`
	Timeout time.Duration `json:"timeout_ns"` // bound on any one command (apply, load)
	// SeedTimeout bounds iptables-restore of the seed rules; past it (the
	// nf_tables flavour slows down with every rule it adds) the same rules
	// are loaded with nft -f, as iptables-nft would have stored them.
	SeedTimeout   time.Duration `json:"seed_timeout_ns"`
	MaxBackground float64       `json:"max_background"` // retry a sample when other processes used more of the machine
	Retries       int           `json:"retries"`
	JSON          bool          `json:"-"`
	Quick         bool          `json:"quick"`

	Ownerwall string `json:"-"` // prebuilt binary; "" builds cmd/ownerwall
	Profile   string `json:"-"` // directory for CPU profiles of apply
	Write     string `json:"-"` // only write the generated worlds there
	From      string `json:"-"` // only print the tables of this saved result
}

// The configurations, in the order of the tables.
const (
	CfgNone     = "none"
	CfgHook     = "hook" // an nftables output chain with no rules: the price of any nft firewall
	CfgSeed     = "seed"
	CfgNft      = "nft"
	CfgIptables = "iptables"
)

var allConfigs = []string{CfgNone, CfgHook, CfgSeed, CfgNft, CfgIptables}

var cfgTitle = map[string]string{
	CfgNone:     "no firewall",
	CfgHook:     "empty nft output chain",
	CfgSeed:     "seed method (iptables)",
	CfgNft:      "ownerwall nft",
	CfgIptables: "ownerwall iptables",
}

func parseFlags(args []string, stderr io.Writer) (*Options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ns := fs.String("n", "10,100,1000,10000,100000", "numbers of accounts, comma-separated")
	shapes := fs.String("shapes", "A,B", "policy shapes: A (one rule per account), B (20 rules over uid ranges and groups)")
	configs := fs.String("configs", strings.Join(allConfigs, ","), "configurations to measure: none, hook (an empty nft output chain), seed, nft, iptables (none is always measured: ratios need it)")
	duration := fs.Duration("duration", time.Second, "one sample's window")
	warmup := fs.Duration("warmup", 300*time.Millisecond, "discarded warm-up window per configuration")
	runs := fs.Int("runs", 9, "samples per configuration (interleaved; the median ratio is reported)")
	interleave := fs.String("interleave", "slice", "slice: one client switches between the configurations' namespaces every -slice; process: one client process per sample, configurations in turn")
	slice := fs.Duration("slice", 20*time.Millisecond, "with -interleave slice: time in one configuration before switching")
	addRuns := fs.Int("add-runs", 5, "add-to-group measurements per backend (median reported)")
	conc := fs.Int("conc", 1, "client connections in flight (one thread each)")
	pin := fs.String("pin", "same", "CPU placement: same (client and server on one CPU), split (client on CPU 0, server on CPU 1), none")
	flavour := fs.String("flavour", "", "iptables flavour for the seed method and ownerwall iptables: legacy, nft, or empty for the host's")
	timeout := fs.Duration("timeout", 15*time.Minute, "bound on any one command (apply, load)")
	seedTimeout := fs.Duration("seed-timeout", 3*time.Minute, "bound on iptables-restore of the seed rules; past it, the same rules are loaded with nft -f as iptables-nft stores them (nf_tables flavour)")
	maxBG := fs.Float64("max-background", 0.05, "take a sample again when other processes used more than this share of all CPUs during it")
	retries := fs.Int("retries", 3, "how many times a busy sample is taken again (the quietest is kept)")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of tables")
	quick := fs.Bool("quick", false, "CI smoke: N = 10,100, short windows (well under 60 s)")
	ow := fs.String("ownerwall", "", "ownerwall binary to measure (default: go build ./cmd/ownerwall)")
	from := fs.String("from", "", "print the tables of a saved -json result and exit")
	write := fs.String("write", "", "only write the generated files (passwd, group, policy.yaml, seed.rules) for each shape and N under this directory, and exit")
	profile := fs.String("profile", "", "write CPU profiles of `ownerwall apply` (nft, iptables) and of the add-to-group re-apply to this directory")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opt := &Options{Duration: *duration, Warmup: *warmup, Runs: *runs, AddRuns: *addRuns, Conc: *conc, Pin: *pin,
		Flavour: *flavour, Timeout: *timeout, JSON: *asJSON, Quick: *quick, Ownerwall: *ow, Profile: *profile,
		SeedTimeout: *seedTimeout, MaxBackground: *maxBG, Retries: *retries, Write: *write,
		Interleave: *interleave, Slice: *slice, From: *from}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["n"] {
			*ns = "10,100"
		}
		if !set["duration"] {
			opt.Duration = 200 * time.Millisecond
		}
		if !set["warmup"] {
			opt.Warmup = 50 * time.Millisecond
		}
		if !set["runs"] {
			opt.Runs = 3
		}
		if !set["add-runs"] {
			opt.AddRuns = 2
		}
		if !set["timeout"] {
			opt.Timeout = 30 * time.Second
		}
		if !set["retries"] {
			opt.Retries = 0
		}
	}
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000000 {
			return nil, fmt.Errorf("-n: %q is not a number of accounts (1..1000000)", f)
		}
		opt.Ns = append(opt.Ns, n)
	}
	for _, f := range strings.Split(*shapes, ",") {
		switch s := Shape(strings.ToUpper(strings.TrimSpace(f))); s {
		case ShapeA, ShapeB:
			opt.Shapes = append(opt.Shapes, s)
		default:
			return nil, fmt.Errorf("-shapes: %q is neither A nor B", f)
		}
	}
	opt.Configs = []string{CfgNone}
	for _, f := range strings.Split(*configs, ",") {
		c := strings.TrimSpace(f)
		switch c {
		case CfgNone:
		case CfgHook, CfgSeed, CfgNft, CfgIptables:
			opt.Configs = append(opt.Configs, c)
		default:
			return nil, fmt.Errorf("-configs: unknown configuration %q (none, hook, seed, nft, iptables)", c)
		}
	}
	switch opt.Flavour {
	case "", "legacy", "nft":
	default:
		return nil, fmt.Errorf("-flavour: %q is neither legacy nor nft", opt.Flavour)
	}
	if opt.Interleave != "slice" && opt.Interleave != "process" {
		return nil, fmt.Errorf("-interleave: %q is neither slice nor process", opt.Interleave)
	}
	if opt.Slice < time.Millisecond || opt.Slice > opt.Duration {
		return nil, errors.New("-slice: [1ms, -duration]")
	}
	switch opt.Pin {
	case "same", "split", "none":
	default:
		return nil, fmt.Errorf("-pin: %q is not same, split or none", opt.Pin)
	}
	if opt.Retries < 0 || opt.Retries > 20 {
		return nil, errors.New("-retries: 0..20")
	}
	if opt.Runs < 1 || opt.Runs > 100 || opt.AddRuns < 1 || opt.AddRuns > 100 {
		return nil, errors.New("-runs and -add-runs: 1..100")
	}
	if opt.Duration <= 0 || opt.Duration > time.Minute || opt.Warmup < 0 || opt.Warmup > time.Minute {
		return nil, errors.New("-duration: (0, 1m]; -warmup: [0, 1m]")
	}
	if opt.Conc < 1 || opt.Conc > 256 {
		return nil, errors.New("-conc: 1..256")
	}
	return opt, nil
}

// tools are the binaries the benchmark runs.
type tools struct {
	dir       string // world-readable scratch directory
	self      string // a copy of this binary that every uid can execute
	ownerwall string
}

// prepare copies this binary where the client's uid can execute it, and
// builds (or copies) ownerwall.
func prepare(opt *Options) (*tools, error) {
	for _, c := range []string{"unshare", "setpriv", "ip", "nft", "iptables-restore", "getent", "taskset"} {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("needs %s: %w", c, err)
		}
	}
	dir, err := os.MkdirTemp("", "ownerwall-bench-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	t := &tools{dir: dir, self: filepath.Join(dir, "bench"), ownerwall: filepath.Join(dir, "ownerwall")}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := copyFile(exe, t.self, 0o755); err != nil {
		return nil, err
	}
	if opt.Ownerwall != "" {
		return t, copyFile(opt.Ownerwall, t.ownerwall, 0o755)
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return nil, errors.New("no go toolchain to build ownerwall (or pass -ownerwall PATH)")
		}
	}
	cmd := exec.Command(goBin, "build", "-o", t.ownerwall, "github.com/ownerwall/ownerwall/cmd/ownerwall")
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/ownerwall: %v: %s", err, out)
	}
	return t, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// writeWorlds writes the generated files of every (shape, N), to look at
// or to replay one step by hand.
func writeWorlds(opt *Options) error {
	for _, shape := range opt.Shapes {
		for _, n := range opt.Ns {
			w := Generate(n, shape)
			dir := filepath.Join(opt.Write, fmt.Sprintf("%s-%d", shape, n))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			files := map[string]string{"passwd": w.Passwd, "group": w.Group, "group.added": w.GroupAdded,
				"policy.yaml": w.Policy, "seed.rules": w.Seed, "seed.nft": w.SeedNft,
				"client": fmt.Sprintf("uid=%d gid=%d groups=%v\n", w.ClientUID, w.ClientGID, w.ClientGroups)}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// moduleRoot is the source tree this binary was built from (so that a
// copied bench binary still finds cmd/ownerwall), or "" for the current
// directory.
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}
