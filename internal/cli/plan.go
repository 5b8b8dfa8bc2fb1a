package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/state"
)

// planResult is what `plan --json` prints.
type planResult struct {
	Changes bool     `json:"changes"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Drift   []string `json:"drift"` // live ruleset lines that differ from what was applied
	Note    string   `json:"note,omitempty"`
}

func (a *app) planCommand() *cobra.Command {
	var file, backendName string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "What apply would change against the live ruleset (exit 0 none, 2 changes, 1 error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			rec, err := a.lastApplied()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("backend") && rec != nil {
				backendName = rec.Backend // compare with what is live
			}
			b, err := newBackend(backendName)
			if err != nil {
				return err
			}
			rs, err := a.load(ctx, file)
			if err != nil {
				return err
			}
			live, err := b.Listing(ctx)
			if err != nil {
				return err
			}
			var drifted []string
			if rec != nil && rec.Ruleset != nil && live != "" {
				if drifted, err = a.driftOf(ctx, b, rec, live); err != nil {
					return err
				}
			}
			res := plan(rs, b.Script(rs), live, rec, drifted)
			if asJSON {
				if err := writeJSON(a.stdout, res); err != nil {
					return err
				}
			} else {
				printPlan(a, res)
			}
			if res.Changes {
				return &ExitError{Code: 2}
			}
			return nil
		},
	}
	policyFlag(cmd, &file)
	cmd.Flags().StringVar(&backendName, "backend", "nft", "nft or iptables (default: the backend last applied)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func plan(rs *ir.Ruleset, script, live string, rec *state.Applied, drifted []string) planResult {
	res := planResult{Added: []string{}, Removed: []string{}, Drift: []string{}}
	want := ir.Describe(rs)
	switch {
	case live == "" && rec == nil:
		res.Added, res.Note = want, "no ownerwall ruleset is loaded"
	case live == "":
		res.Added, res.Note = want, "the ruleset applied at "+rec.AppliedAt.Format("2006-01-02 15:04:05")+" is no longer loaded"
	case rec == nil || rec.Ruleset == nil:
		res.Added, res.Note = want, "a ruleset is loaded but ownerwall has no record of applying it"
	default:
		res.Removed, res.Added = diffLines(ir.Describe(rec.Ruleset), want)
		if rec.Script != script && len(res.Added) == 0 && len(res.Removed) == 0 {
			res.Note = "the rendered ruleset differs (a new ownerwall version?) though its meaning does not"
		}
		if drifted != nil {
			res.Drift = drifted
		}
		if rec.Script != script {
			res.Changes = true
		}
	}
	res.Changes = res.Changes || len(res.Added) > 0 || len(res.Removed) > 0 || len(res.Drift) > 0
	return res
}

// lastApplied is the record of the last apply, nil if there is none.
func (a *app) lastApplied() (*state.Applied, error) {
	rec, err := a.store().LoadApplied()
	if errors.Is(err, state.ErrNone) {
		return nil, nil
	}
	return rec, err
}

// drift lists how the live ruleset differs from the one recorded at apply
// ("- " recorded but gone, "+ " live but not applied), counters aside.
func drift(recorded, live string) []string {
	out := []string{}
	gone, extra := diffLines(strings.Split(recorded, "\n"), strings.Split(nft.Normalize(live), "\n"))
	for _, l := range gone {
		out = append(out, "- "+strings.TrimSpace(l))
	}
	for _, l := range extra {
		out = append(out, "+ "+strings.TrimSpace(l))
	}
	return out
}

// diffLines returns the lines only in a (removed) and only in b (added),
// as multisets, each in its original order.
func diffLines(a, b []string) (removed, added []string) {
	count := map[string]int{}
	for _, l := range b {
		count[l]++
	}
	for _, l := range a {
		if count[l] > 0 {
			count[l]--
			continue
		}
		if strings.TrimSpace(l) != "" {
			removed = append(removed, l)
		}
	}
	count = map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		if count[l] > 0 {
			count[l]--
			continue
		}
		if strings.TrimSpace(l) != "" {
			added = append(added, l)
		}
	}
	return removed, added
}

func printPlan(a *app, res planResult) {
	if !res.Changes {
		fmt.Fprintln(a.stdout, "no changes: the live ruleset is what this policy would load")
		return
	}
	if res.Note != "" {
		fmt.Fprintln(a.stdout, res.Note)
	}
	for _, l := range res.Removed {
		fmt.Fprintln(a.stdout, "- "+l)
	}
	for _, l := range res.Added {
		fmt.Fprintln(a.stdout, "+ "+l)
	}
	if len(res.Drift) > 0 {
		fmt.Fprintln(a.stdout, "drift: the live table was changed since it was applied (apply puts it back):")
		for _, l := range res.Drift {
			fmt.Fprintln(a.stdout, "  "+l)
		}
	}
}
