package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/explain"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/policy"
)

func (a *app) demoCommand() *cobra.Command {
	var showRuleset bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the seed scenarios in a throwaway network namespace and print who can reach what",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.demo(cmd.Context(), showRuleset)
		},
	}
	cmd.Flags().BoolVar(&showRuleset, "show-ruleset", false, "also print the ruleset the kernel held")
	return cmd
}

func (a *app) demo(ctx context.Context, showRuleset bool) error {
	if os.Geteuid() != 0 {
		return errors.New("demo needs root: it creates network and mount namespaces (it leaves the host untouched)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sc, expectations := lab.Seed()
	verdicts, err := seedExplain(ctx, sc, expectations)
	if err != nil {
		return fmt.Errorf("demo: explain: %w", err)
	}
	fmt.Fprintf(a.stdout, "ownerwall demo: the seed world in throwaway namespaces\n")
	fmt.Fprintf(a.stdout, "  this host: lo (127.0.0.0/8, ::1), owlan %s and %s, and %s added to lo after apply\n", lab.HostV4, lab.HostV6, lab.LateAddr)
	fmt.Fprintf(a.stdout, "  strudel:   %s and %s over a veth pair, serving tcp 80, 443, 992\n", lab.RemoteV4, lab.RemoteV6)
	fmt.Fprintf(a.stdout, "  accounts:  root, plebian, admin7 (wheel: root, admin7 as a supplementary group)\n")
	fmt.Fprintf(a.stdout, "  policy:    the example of policy-v1.md (ownerwall export shows its ruleset)\n\n")
	rep, err := lab.Run(ctx, self, sc)
	if err != nil {
		return err
	}
	if rep.ApplyError != "" {
		return fmt.Errorf("demo: apply failed: %s", rep.ApplyError)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHO\tCONNECTS TO\tWHAT\tEXPECTED\tEXPLAIN\tKERNEL\t")
	bad := 0
	for i, e := range expectations {
		obs := rep.Results[i].Observed
		mark := "ok"
		if obs != e.Expect || verdicts[i] != e.Expect {
			mark = "DIFFERS"
			if rep.Results[i].Detail != "" {
				mark += " (" + rep.Results[i].Detail + ")"
			}
			bad++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Who(), e.To, e.Label, e.Expect, verdicts[i], obs, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if showRuleset {
		fmt.Fprintf(a.stdout, "\nthe ruleset the kernel held:\n%s", rep.Ruleset)
	}
	fmt.Fprintf(a.stdout, "\n%d attempts: %d as expected, %d differ\n", len(expectations), len(expectations)-bad, bad)
	if bad > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("demo: %d attempts did not go as the policy says", bad)}
	}
	return nil
}

// seedExplain asks explain, on the same compiled ruleset, for the verdict
// of every seed attempt.
func seedExplain(ctx context.Context, sc lab.Scenario, ex []lab.Expectation) ([]string, error) {
	dir, err := ident.NewStatic(sc.Passwd, sc.Group)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(sc.PolicyName, []byte(sc.Policy))
	if err != nil {
		return nil, err
	}
	rs, err := compile.Compile(ctx, p, compile.Env{Dir: dir, Hosts: dir})
	if err != nil {
		return nil, err
	}
	local := map[netip.Addr]bool{}
	for _, s := range []string{lab.HostV4, lab.HostV6, lab.LateAddr, "::1"} {
		local[netip.MustParseAddr(s)] = true
	}
	loop := netip.MustParsePrefix("127.0.0.0/8")
	isLocal := func(a netip.Addr) bool { return local[a] || loop.Contains(a) }
	owner := map[int]string{}
	for _, l := range sc.Listeners {
		if l.Where != "remote" {
			owner[l.Port] = l.User
		}
	}
	out := make([]string, len(ex))
	for i, e := range ex {
		addr, port, proto, err := parseTo(e.To)
		if err != nil {
			return nil, err
		}
		q := explain.Query{Dir: ir.To, Addr: addr, Port: port, Proto: proto}
		user := e.User
		if e.From == "remote" {
			// Inbound: what counts is the listener's owner accepting it.
			q = explain.Query{Dir: ir.Serve, Port: port, Proto: proto}
			user = owner[int(port)]
		}
		acct, err := dir.LookupUser(ctx, orRoot(user))
		if err != nil {
			return nil, err
		}
		q.UID = acct.UID
		out[i] = string(explain.Evaluate(rs, q, isLocal).Verdict)
	}
	return out, nil
}

func orRoot(u string) string {
	if u == "" {
		return "root"
	}
	return u
}
