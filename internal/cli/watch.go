package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/fswatch"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// The files watch follows, and the labels its reports give them.
const (
	causeStart    = "start"
	causePolicy   = "policy"
	causePasswd   = "passwd"
	causeGroup    = "group"
	causeNSSwitch = "nsswitch"
	causeInterval = "interval"
	causeHangup   = "hangup"
)

type watchOptions struct {
	file, backend string
	interval      time.Duration
	json          bool
}

func (a *app) watchCommand() *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Apply the policy, then keep it applied as accounts, groups, units and the policy file change",
		Long: `watch applies the policy like apply, then stays: when /etc/passwd,
/etc/group, /etc/nsswitch.conf or the policy file change (written in place
or renamed over), on SIGHUP, and every --interval (for LDAP, SSSD and
restarted units, which no file announces), it applies again. A membership
change becomes one uid element moved in the kernel, in milliseconds; the
account database is kept in memory and only what changed is read again.
Each apply prints one line (--json: one object). An invalid policy file
is reported and the ruleset in force stays.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.interval < 0 {
				return fmt.Errorf("--interval must not be negative")
			}
			return a.watch(cmd.Context(), o)
		},
	}
	policyFlag(cmd, &o.file)
	cmd.Flags().StringVar(&o.backend, "backend", "nft", "nft or iptables")
	cmd.Flags().DurationVar(&o.interval, "interval", 5*time.Minute, "apply again this often whatever the files say (0: never)")
	cmd.Flags().BoolVar(&o.json, "json", false, "one JSON object per apply")
	return cmd
}

// watchReport is one apply of watch.
type watchReport struct {
	Time   time.Time `json:"time"`
	Cause  []string  `json:"cause"`
	Result string    `json:"result,omitempty"`
	// Changed is false when the kernel was left exactly as it was.
	Changed bool   `json:"changed"`
	Error   string `json:"error,omitempty"`
	// PolicyError: the policy file does not parse; the last good policy
	// was applied instead (accounts and groups still follow).
	PolicyError string `json:"policy_error,omitempty"`
	// Pending: an apply --confirm-within awaits confirmation; watch left
	// it alone (and Error says so).
	Pending bool `json:"pending,omitempty"`
	// LoadedMS is the time from the cause to the kernel holding the new
	// ruleset; MS adds saving the record.
	LoadedMS float64 `json:"loaded_ms,omitempty"`
	MS       float64 `json:"ms"`
}

// watcher is the state watch keeps between applies.
type watcher struct {
	a      *app
	b      backend
	file   string
	data   []byte         // the policy file as last read
	policy *policy.Policy // parsed from data
}

func (a *app) watch(ctx context.Context, o watchOptions) error {
	b, err := newBackend(o.backend)
	if err != nil {
		return err
	}
	a.records = &recordCache{}
	fw, err := fswatch.New(map[string]string{
		o.file: causePolicy, "/etc/passwd": causePasswd, "/etc/group": causeGroup, "/etc/nsswitch.conf": causeNSSwitch,
	})
	if err != nil {
		return err
	}
	defer fw.Close()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(stop)
	defer signal.Stop(hup)
	// A signal ends the wait, never an apply under way: applies run on a
	// context that is not cancelled.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := make(chan []string)
	failed := make(chan error, 1)
	go func() {
		for {
			labels, err := fw.Next(waitCtx)
			if err != nil {
				failed <- err
				return
			}
			select {
			case changes <- labels:
			case <-waitCtx.Done():
				return
			}
		}
	}()
	var tick <-chan time.Time
	if o.interval > 0 {
		t := time.NewTicker(o.interval)
		defer t.Stop()
		tick = t.C
	}
	w := &watcher{a: a, b: b, file: o.file}
	applyCtx := context.WithoutCancel(ctx)
	first := w.sync(applyCtx, []string{causeStart})
	a.report(first, o.json)
	if first.Error != "" && !first.Pending {
		return &ExitError{Code: 1} // a policy or host that cannot be applied: say so, and let systemd show it
	}
	for {
		var cause []string
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case err := <-failed:
			if waitCtx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		case <-hup:
			cause = []string{causeHangup}
		case <-tick:
			cause = []string{causeInterval}
		case cause = <-changes:
		}
		a.report(w.sync(applyCtx, cause), o.json)
	}
}

// compileTimeout bounds one compile of watch (a hung LDAP or DNS server
// must not wedge it).
const compileTimeout = 2 * time.Minute

// forgetter is a directory that can drop what it read (ident.NSS).
type forgetter interface {
	ForgetAccounts()
	ForgetGroups()
}

// sync reads again what cause says may have changed and applies.
func (w *watcher) sync(ctx context.Context, cause []string) (rep watchReport) {
	start := time.Now()
	rep = watchReport{Time: start.UTC(), Cause: cause}
	defer func() { rep.MS = float64(time.Since(start).Microseconds()) / 1000 }()
	everything := slices.ContainsFunc(cause, func(c string) bool {
		return c == causeStart || c == causeHangup || c == causeInterval || c == causePasswd || c == causeNSSwitch
	})
	w.forget(everything, slices.Contains(cause, causeGroup))
	if everything || slices.Contains(cause, causePolicy) || w.policy == nil {
		if err := w.readPolicy(); err != nil {
			if w.policy == nil {
				rep.Error = oneLine(err)
				return rep
			}
			rep.PolicyError = oneLine(err) // and the last good one stays
		}
	}
	// Compiling asks NSS (LDAP, SSSD) and DNS: bounded, and before the
	// lock, which only the load and the record need.
	cctx, cancel := context.WithTimeout(ctx, compileTimeout)
	rs, err := compile.Compile(cctx, w.policy, w.a.env)
	cancel()
	w.a.phase(ctx, "compile", start)
	if err != nil {
		rep.Error = oneLine(err)
		return rep
	}
	l, err := w.a.lock(ctx)
	if err != nil {
		rep.Error = oneLine(err)
		return rep
	}
	defer l.Release()
	if _, err := w.a.store().LoadPending(); err == nil {
		// Someone applied by hand with --confirm-within: their apply,
		// and its rollback, are left alone until confirmed or rolled back.
		rep.Error = "an apply awaits `ownerwall confirm`: not applied, the ruleset in force stays"
		rep.Pending = true
		return rep
	}
	res, err := w.a.apply1(ctx, w.b, rs, w.file, w.data, 0)
	if err != nil {
		rep.Error = oneLine(err)
		return rep
	}
	rep.Result = res.message()
	rep.LoadedMS = float64(res.loadedAt.Sub(start).Microseconds()) / 1000
	rep.Changed = !res.how.inPlace || res.how.changes > 0
	return rep
}

// forget drops the accounts (and groups) read before, or only the groups.
func (w *watcher) forget(accounts, groups bool) {
	if !accounts && !groups {
		return
	}
	f, ok := w.a.env.Dir.(forgetter)
	if !ok {
		w.a.env.Dir = ident.NewNSS() // nothing kept: everything is read again
		return
	}
	if accounts {
		f.ForgetAccounts()
	}
	f.ForgetGroups()
}

// readPolicy reads the policy file, and parses it when it changed. A
// policy that does not parse is an error, and the one in force stays.
func (w *watcher) readPolicy() error {
	data, err := readPolicy(w.file)
	if err != nil {
		return err
	}
	if w.policy != nil && bytes.Equal(data, w.data) {
		return nil
	}
	p, err := policy.Parse(w.file, data)
	if err != nil {
		return err
	}
	w.data, w.policy = data, p
	return nil
}

// oneLine is err as one line (problems of a policy are several).
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " | ")
}

func (a *app) report(r watchReport, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(a.stdout).Encode(r)
		return
	}
	what := r.Result
	if r.Error != "" {
		what = "NOT APPLIED, the ruleset in force stays: " + r.Error
	} else if !r.Changed {
		what = "no change"
	}
	if r.PolicyError != "" {
		what = "the policy file is not valid, the last good policy stays (" + r.PolicyError + "); " + what
	}
	took := fmt.Sprintf("%.1f ms", r.MS)
	if r.LoadedMS > 0 {
		took = fmt.Sprintf("in the kernel after %.1f ms, recorded after %.1f ms", r.LoadedMS, r.MS)
	}
	fmt.Fprintf(a.stdout, "%s %s: %s (%s)\n", r.Time.Format(time.RFC3339), strings.Join(r.Cause, ","), what, took)
}
