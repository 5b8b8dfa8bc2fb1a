package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/state"
)

type statusResult struct {
	Backend   string        `json:"backend"`
	Flavour   string        `json:"flavour"`
	Loaded    bool          `json:"loaded"`
	Policy    string        `json:"policy_file,omitempty"`
	AppliedAt *time.Time    `json:"applied_at,omitempty"`
	Pending   *time.Time    `json:"pending_until,omitempty"`
	Drift     []string      `json:"drift"`
	Rules     []nft.Counter `json:"rules"`
	Ruleset   string        `json:"ruleset,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	var asJSON, full bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "The live ruleset: per-rule counters, where it came from, and drift",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			rec, err := a.lastApplied()
			if err != nil {
				return err
			}
			name := "nft"
			if rec != nil {
				name = rec.Backend
			}
			b, err := newBackend(name)
			if err != nil {
				return err
			}
			live, err := b.Listing(ctx)
			if err != nil {
				return err
			}
			res := statusResult{Backend: b.Name(), Flavour: b.Flavour(ctx), Loaded: live != "", Drift: []string{}, Rules: []nft.Counter{}}
			if full {
				res.Ruleset = live
			}
			if rec != nil {
				res.Policy, res.AppliedAt = rec.Policy, &rec.AppliedAt
				if live != "" {
					if res.Drift, err = a.driftOf(ctx, b, rec, live); err != nil {
						return err
					}
				}
			}
			if p, err := a.store().LoadPending(); err == nil {
				res.Pending = &p.Deadline
			}
			if live != "" {
				if res.Rules, err = b.Counters(ctx); err != nil {
					return err
				}
				if res.Rules == nil {
					res.Rules = []nft.Counter{}
				}
			}
			if asJSON {
				return writeJSON(a.stdout, res)
			}
			printStatus(a, res, rec)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.Flags().BoolVar(&full, "ruleset", false, "also print the live ruleset")
	return cmd
}

func printStatus(a *app, res statusResult, rec *state.Applied) {
	fmt.Fprintf(a.stdout, "backend: %s (%s)\n", res.Backend, res.Flavour)
	switch {
	case !res.Loaded && rec == nil:
		fmt.Fprintln(a.stdout, "no ownerwall ruleset is loaded")
		return
	case !res.Loaded:
		fmt.Fprintf(a.stdout, "NOT LOADED: the ruleset applied %s from %s is gone (run ownerwall restore)\n", rec.AppliedAt.Format(time.RFC3339), rec.Policy)
		return
	case rec == nil:
		fmt.Fprintln(a.stdout, "loaded, but ownerwall has no record of applying it (state missing)")
	default:
		fmt.Fprintf(a.stdout, "applied: %s from %s (sha256 %.12s)\n", rec.AppliedAt.Format(time.RFC3339), rec.Policy, rec.SHA256)
	}
	if res.Pending != nil {
		fmt.Fprintf(a.stdout, "PENDING: rolls back at %s unless `ownerwall confirm` runs\n", res.Pending.Format(time.RFC3339))
	}
	if len(res.Drift) == 0 {
		fmt.Fprintln(a.stdout, "drift: none")
	} else {
		fmt.Fprintln(a.stdout, "DRIFT: the live table differs from what was applied:")
		for _, l := range res.Drift {
			fmt.Fprintln(a.stdout, "  "+l)
		}
	}
	fmt.Fprintf(a.stdout, "%-6s %-40s %10s %12s\n", "RULE", "NAME", "PACKETS", "BYTES")
	for _, c := range res.Rules {
		fmt.Fprintf(a.stdout, "%-6d %-40s %10d %12d\n", c.Rule, c.Name, c.Packets, c.Bytes)
	}
	if res.Ruleset != "" {
		fmt.Fprint(a.stdout, "\n"+res.Ruleset)
	}
}
