package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/sealed"
	"github.com/ownerwall/ownerwall/internal/state"
)

// lockWait bounds how long a command waits for another ownerwall.
const lockWait = 2 * time.Minute

func (a *app) store() state.Store { return state.Store{Dir: state.Dir()} }

func (a *app) lock(ctx context.Context) (*state.Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	return a.store().Acquire(ctx)
}

func (a *app) applyCommand() *cobra.Command {
	var file, backendName string
	var confirm time.Duration
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Compile the policy and load it in one kernel transaction",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			b, err := newBackend(backendName)
			if err != nil {
				return err
			}
			if confirm < 0 {
				return errors.New("--confirm-within must be positive")
			}
			data, err := readPolicy(file)
			if err != nil {
				return err
			}
			// The worker parses and compiles: handing it the compiled
			// ruleset instead cost more (100,000 rules: 1.2 s of JSON)
			// than compiling there.
			return a.inWorker(ctx, workRequest{Op: "apply", Backend: b.Name(), File: file, Policy: data, Confirm: confirm})
		},
	}
	policyFlag(cmd, &file)
	cmd.Flags().StringVar(&backendName, "backend", "nft", "nft or iptables")
	cmd.Flags().DurationVar(&confirm, "confirm-within", 0, "roll back by itself unless `ownerwall confirm` runs within this time (e.g. 30s)")
	return cmd
}

// workRequest is what a worker is asked to do.
type workRequest struct {
	Op      string // apply, flush, restore
	Backend string
	File    string
	Policy  []byte `json:"-"` // passed raw, in a memfd of its own (fd 4)
	Confirm time.Duration
	Flush   []string // flush: the backends to flush
}

// inWorker runs a change of the ruleset in a detached worker process and
// waits for it. The worker is in its own session and ignores the signals
// a dying terminal sends, so killing `ownerwall apply` (even with -9) at
// any moment leaves the change either not started or carried through:
// never one address family loaded and the other not, never a ruleset
// loaded but not recorded.
func (a *app) inWorker(ctx context.Context, req workRequest) error {
	start := time.Now()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	a.phase(ctx, "encode request", start)
	f, err := sealed.File("ownerwall-work", data)
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := sealed.File("ownerwall-policy", req.Policy)
	if err != nil {
		return err
	}
	defer pf.Close()
	cmd := exec.Command(self, "__work")
	cmd.ExtraFiles = []*os.File{f, pf}
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = os.Environ()
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &ExitError{Code: max(ee.ExitCode(), 1)} // the worker said why
		}
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

func (a *app) workCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "__work",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Finish what was started whatever happens to the caller.
			signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
			ctx := context.Background()
			f := os.NewFile(3, "work")
			if f == nil {
				return errors.New("__work runs as ownerwall's worker")
			}
			start := time.Now()
			var req workRequest
			if err := json.NewDecoder(f).Decode(&req); err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			pf := os.NewFile(4, "policy")
			if pf == nil {
				return errors.New("__work runs as ownerwall's worker")
			}
			policy, err := io.ReadAll(pf)
			if err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			req.Policy = policy
			a.phase(ctx, "worker: read request", start)
			l, err := a.lock(ctx)
			if err != nil {
				return err
			}
			defer l.Release()
			switch req.Op {
			case "apply":
				b, err := newBackend(req.Backend)
				if err != nil {
					return err
				}
				rs, err := a.compileData(ctx, req.File, req.Policy)
				if err != nil {
					return err
				}
				msg, err := a.apply(ctx, b, rs, req.File, req.Policy, req.Confirm)
				if err == nil {
					fmt.Fprintln(a.stdout, msg)
				}
				return err
			case "flush":
				return a.flush(ctx, req.Flush)
			case "restore":
				return a.restore(ctx)
			}
			return fmt.Errorf("worker: unknown operation %q", req.Op)
		},
	}
}

// apply loads rs and records it; with confirm > 0 it also arms the
// rollback. The caller holds the lock. msg says what was done.
func (a *app) apply(ctx context.Context, b backend, rs *ir.Ruleset, file string, policy []byte, confirm time.Duration) (msg string, err error) {
	res, err := a.apply1(ctx, b, rs, file, policy, confirm)
	return res.message(), err
}

// applied is what one apply did.
type applied struct {
	file, backend   string
	rules, profiles int
	how             loaded
	deadline        time.Time // when the apply rolls back unless confirmed; zero: none
	loadedAt        time.Time // when the kernel had the ruleset (the record is saved after)
}

func (r applied) message() string {
	msg := fmt.Sprintf("applied %s (%s backend): %d rules, %d profiles, %s", r.file, r.backend, r.rules, r.profiles, r.how)
	if !r.deadline.IsZero() {
		msg += fmt.Sprintf("; run `ownerwall confirm` before %s or it rolls back", r.deadline.Format(time.RFC3339))
	}
	return msg
}

// loaded says how a ruleset was loaded: whole, or by changing uid map
// elements in place.
type loaded struct {
	inPlace bool
	changes int // in place: uid map elements changed
}

func (l loaded) String() string {
	if l.inPlace {
		return fmt.Sprintf("updated %d uid map elements in place", l.changes)
	}
	return "replaced the whole ruleset"
}

func (a *app) apply1(ctx context.Context, b backend, rs *ir.Ruleset, file string, policy []byte, confirm time.Duration) (applied, error) {
	res := applied{file: file, backend: b.Name(), rules: len(rs.Rules), profiles: len(rs.Profiles)}
	st := a.store()
	var pending *state.Pending
	if confirm > 0 {
		snap, err := b.Snapshot(ctx)
		if err != nil {
			return res, fmt.Errorf("snapshot before apply: %w", err)
		}
		prev, err := st.LoadApplied()
		if err != nil && !errors.Is(err, state.ErrNone) {
			prev = nil // a corrupt record is not worth restoring; the snapshot is
		}
		if old, err := st.LoadPending(); err == nil {
			// An unconfirmed apply is superseded; rolling back still
			// returns to what was there before it.
			snap, prev = old.Rollback, old.Previous
		}
		pending = &state.Pending{Token: token(), Deadline: time.Now().Add(confirm), Backend: b.Name(), Rollback: snap, Previous: prev}
	} else if err := st.RemovePending(); err != nil {
		return res, err
	}
	start := time.Now()
	// The script is rendered once, by the first of the load (when it
	// replaces the whole ruleset) and the record, which is written while
	// the kernel loads.
	script := sync.OnceValue(func() string { return b.Script(rs) })
	var draft *state.Draft
	startDraft := func() {
		if draft == nil {
			draft = st.Draft(script, rs)
		}
	}
	before, marked := b.Mark()
	how, prev, err := a.load1(ctx, b, rs, script, startDraft)
	if err != nil {
		if draft != nil {
			draft.Discard()
		}
		return res, err
	}
	startDraft() // an update in place is quick: the record is written after it, not against it
	res.how, res.loadedAt = how, time.Now()
	a.phase(ctx, "load", start)
	start = time.Now()
	sum := sha256.Sum256(policy)
	rec := &state.Applied{
		Backend: b.Name(), Policy: file, SHA256: hex.EncodeToString(sum[:]),
		AppliedAt: time.Now().UTC(), Script: script(), Ruleset: rs,
	}
	if prev != nil {
		rec.Flavour = prev.Flavour // updated in place: the same nft
	} else {
		rec.Flavour = b.Flavour(ctx)
	}
	if marked {
		// The mark is recorded only if the kernel moved by exactly this
		// load: a commit by anyone else at the same moment would be taken
		// for ownerwall's own. Without a mark, the next apply replaces
		// the whole table and drift is measured against a reference.
		commits := uint32(1)
		if how.inPlace && how.changes == 0 {
			commits = 0
		}
		if after, ok := b.Mark(); ok && after.Follows(before, commits) {
			rec.Mark = &after
		} else {
			a.log.WarnContext(ctx, "another ruleset change came at the same moment as this apply: the next apply will replace the whole table")
		}
	} else {
		listing, err := b.Listing(ctx)
		if err != nil {
			draft.Discard()
			return res, err
		}
		rec.Listing = nft.Normalize(listing)
	}
	a.phase(ctx, "record", start)
	start = time.Now()
	if err := draft.Commit(rec); err != nil {
		return res, fmt.Errorf("applied, but the state was not saved (restore at boot would load the previous policy): %w", err)
	}
	a.records.keep(st, rec)
	a.phase(ctx, "save state", start)
	if pending != nil {
		if err := st.SavePending(pending); err != nil {
			return res, a.rollbackNow(ctx, pending, fmt.Errorf("cannot arm the rollback: %w", err))
		}
		if err := a.spawnWatchdog(pending); err != nil {
			return res, a.rollbackNow(ctx, pending, fmt.Errorf("cannot start the rollback timer: %w", err))
		}
		res.deadline = pending.Deadline
	}
	return res, nil
}

// load1 loads rs: in place, changing only uid map elements, when the live
// ruleset is exactly the one last applied by this backend and only
// memberships changed; else by replacing the whole ruleset. It says which.
// When it updated in place, prev is the record it started from.
//
// beforeLoad is called before a whole ruleset is loaded (to start writing
// the record meanwhile).
func (a *app) load1(ctx context.Context, b backend, rs *ir.Ruleset, script func() string, beforeLoad func()) (how loaded, prev *state.Applied, err error) {
	start := time.Now()
	if rec, err := a.loadApplied(); err == nil && rec.Backend == b.Name() && rec.Ruleset != nil {
		a.phase(ctx, "read state", start)
		if a.unchanged(ctx, b, rec) {
			start = time.Now()
			n, ok, err := b.Update(ctx, rec.Ruleset, rs)
			a.phase(ctx, "update in place", start)
			if err == nil && ok {
				return loaded{inPlace: true, changes: n}, rec, nil
			}
			if err != nil {
				// The transaction changed nothing; the whole ruleset,
				// loaded in one transaction too, does not depend on what
				// the live table holds.
				a.log.WarnContext(ctx, "update in place failed, replacing the whole ruleset", "error", err)
				beforeLoad()
				if lerr := b.Load(ctx, rs, script); lerr != nil {
					return loaded{}, nil, fmt.Errorf("%w (after an update in place failed: %v)", lerr, err)
				}
				return loaded{}, nil, nil
			}
		}
	}
	beforeLoad()
	if err := b.Load(ctx, rs, script); err != nil {
		return loaded{}, nil, err
	}
	return loaded{}, nil, nil
}

// unchanged reports whether the live ruleset is exactly the one rec
// records: the kernel's generation has not moved since (nft), or the live
// listing is the recorded one. When the generation moved, something in the
// namespace changed, maybe not ownerwall's table; a full replacement is
// then the safe answer, and costs what a comparison would.
func (a *app) unchanged(ctx context.Context, b backend, rec *state.Applied) bool {
	if rec.Mark != nil {
		now, ok := b.Mark()
		return ok && now == *rec.Mark
	}
	if _, marked := b.Mark(); marked {
		return false // nft without a mark: not known to be ours, replace it
	}
	live, err := b.Listing(ctx)
	return err == nil && live != "" && rec.Listing != "" && nft.Normalize(live) == rec.Listing
}

// driftOf lists how the live listing differs from what rec applied; none
// while the kernel's generation has not moved.
func (a *app) driftOf(ctx context.Context, b backend, rec *state.Applied, live string) ([]string, error) {
	if rec.Mark != nil {
		if now, ok := b.Mark(); ok && now == *rec.Mark {
			return []string{}, nil
		}
	}
	ref := rec.Listing
	if ref == "" {
		var err error
		if ref, err = b.Reference(ctx, rec.Script); err != nil {
			return nil, err
		}
	}
	return drift(ref, live), nil
}

func token() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// spawnWatchdog starts a detached `ownerwall __rollback`: in its own
// session, with no terminal, so a dying SSH session does not take it along.
func (a *app) spawnWatchdog(p *state.Pending) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	logf, err := os.OpenFile(a.store().Dir+"/rollback.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "__rollback", "--token", p.Token)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// rollbackNow undoes an apply whose confirmation cannot be armed.
func (a *app) rollbackNow(ctx context.Context, p *state.Pending, cause error) error {
	if err := a.rollback(ctx, p); err != nil {
		return fmt.Errorf("%v; the rollback failed too: %w", cause, err)
	}
	return fmt.Errorf("%v; rolled back", cause)
}

// rollback restores what was live before a pending apply. The caller holds
// the lock.
func (a *app) rollback(ctx context.Context, p *state.Pending) error {
	b, err := newBackend(p.Backend)
	if err != nil {
		return err
	}
	if err := b.LoadScript(ctx, p.Rollback); err != nil {
		return err
	}
	st := a.store()
	if p.Previous != nil {
		if err := st.SaveApplied(p.Previous); err != nil {
			return err
		}
	} else if err := st.RemoveApplied(); err != nil {
		return err
	}
	return st.RemovePending()
}

func (a *app) confirmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "confirm",
		Short: "Keep the ruleset applied with --confirm-within",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			l, err := a.lock(ctx)
			if err != nil {
				return err
			}
			defer l.Release()
			p, err := a.store().LoadPending()
			if errors.Is(err, state.ErrNone) {
				return &ExitError{Code: 1, Err: errors.New("nothing is pending confirmation")}
			}
			if err != nil {
				return err
			}
			if time.Now().After(p.Deadline) {
				if err := a.rollback(ctx, p); err != nil {
					return err
				}
				return &ExitError{Code: 1, Err: fmt.Errorf("too late: the deadline was %s; rolled back", p.Deadline.Format(time.RFC3339))}
			}
			if err := a.store().RemovePending(); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "confirmed: the applied ruleset stays")
			return nil
		},
	}
}

func (a *app) rollbackWatchdogCommand() *cobra.Command {
	var tok string
	cmd := &cobra.Command{
		Use:    "__rollback",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := context.Background() // outlives signals to the session
			p, err := a.store().LoadPending()
			if err != nil || p.Token != tok {
				return nil // confirmed or superseded already
			}
			time.Sleep(time.Until(p.Deadline))
			l, err := a.lock(ctx)
			if err != nil {
				return err
			}
			defer l.Release()
			p, err = a.store().LoadPending()
			if err != nil || p.Token != tok {
				return nil
			}
			if err := a.rollback(ctx, p); err != nil {
				return fmt.Errorf("rollback: %w", err)
			}
			fmt.Fprintf(a.stdout, "%s: not confirmed by %s: rolled back\n", time.Now().UTC().Format(time.RFC3339), p.Deadline.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&tok, "token", "", "the pending apply to watch")
	return cmd
}

func (a *app) flushCommand() *cobra.Command {
	var backendName string
	cmd := &cobra.Command{
		Use:   "flush",
		Short: "Remove ownerwall's own ruleset, nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names := []string{backendName}
			if !cmd.Flags().Changed("backend") {
				names = []string{"nft"}
				if st, err := a.store().LoadApplied(); err == nil && st.Backend != "nft" {
					names = append(names, st.Backend)
				}
			}
			for _, n := range names {
				if _, err := newBackend(n); err != nil {
					return err
				}
			}
			return a.inWorker(cmd.Context(), workRequest{Op: "flush", Flush: names})
		},
	}
	cmd.Flags().StringVar(&backendName, "backend", "nft", "nft or iptables (default: nft and the backend last applied)")
	return cmd
}

// flush removes ownerwall's ruleset from the named backends and forgets
// the state. The caller holds the lock.
func (a *app) flush(ctx context.Context, names []string) error {
	for _, n := range names {
		b, err := newBackend(n)
		if err != nil {
			return err
		}
		if err := b.Flush(ctx); err != nil {
			return err
		}
	}
	if err := a.store().RemovePending(); err != nil {
		return err
	}
	if err := a.store().RemoveApplied(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "removed ownerwall's ruleset")
	return nil
}

func (a *app) restoreCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restore",
		Short: "Load the last applied ruleset (at boot), from the state file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.inWorker(cmd.Context(), workRequest{Op: "restore"})
		},
	}
}

// restore loads the recorded ruleset. The caller holds the lock.
func (a *app) restore(ctx context.Context) error {
	st := a.store()
	if p, err := st.LoadPending(); err == nil {
		// Booted while an apply awaited confirmation: it was never
		// confirmed, so the previous ruleset is the one to load.
		if p.Previous == nil {
			if err := st.RemovePending(); err != nil {
				return err
			}
			if err := st.RemoveApplied(); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "an unconfirmed apply was pending and nothing was applied before it: nothing to restore")
			return nil
		}
		if err := st.SaveApplied(p.Previous); err != nil {
			return err
		}
		if err := st.RemovePending(); err != nil {
			return err
		}
	}
	rec, err := st.LoadApplied()
	if errors.Is(err, state.ErrNone) {
		return &ExitError{Code: 1, Err: fmt.Errorf("nothing to restore: %w (run ownerwall apply first)", err)}
	}
	if err != nil {
		return err
	}
	b, err := newBackend(rec.Backend)
	if err != nil {
		return err
	}
	before, marked := b.Mark()
	if err := b.LoadScript(ctx, rec.Script); err != nil {
		return err
	}
	if marked {
		// What is loaded now is exactly rec.Script: drift is measured
		// from here, and the next apply may update elements in place.
		rec.Mark = nil
		if after, ok := b.Mark(); ok && after.Follows(before, 1) {
			rec.Mark = &after
		}
		if err := st.SaveApplied(rec); err != nil {
			return fmt.Errorf("restored, but the state was not saved: %w", err)
		}
	}
	fmt.Fprintf(a.stdout, "restored the ruleset applied %s from %s\n", rec.AppliedAt.Format(time.RFC3339), rec.Policy)
	return nil
}
