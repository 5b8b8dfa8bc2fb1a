package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/explain"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
)

func (a *app) explainCommand() *cobra.Command {
	var file, user, to, serve, unit string
	var uid int64
	var asJSON, live bool
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "The verdict for one connection attempt, the rule that decides it, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			q := explain.Query{}
			switch {
			case user != "" && uid >= 0:
				return errors.New("give --user or --uid, not both")
			case user != "":
				acct, err := a.env.Dir.LookupUser(ctx, user)
				if err != nil {
					return fmt.Errorf("--user: %w", err)
				}
				q.UID = acct.UID
			case uid >= 0:
				if uid > int64(ir.MaxUID) {
					return fmt.Errorf("--uid %d is out of range", uid)
				}
				q.UID = uint32(uid)
			default:
				return errors.New("give --user NAME or --uid N")
			}
			var err error
			switch {
			case (to == "") == (serve == ""):
				return errors.New("give --to HOST:PORT/PROTO or --serve PORT/PROTO")
			case to != "":
				q.Dir = ir.To
				q.Addr, q.Port, q.Proto, err = parseTo(to)
			default:
				q.Dir = ir.Serve
				q.Port, q.Proto, err = parsePortProto(serve)
			}
			if err != nil {
				return err
			}
			if unit != "" {
				if a.env.Units == nil {
					return errors.New("--unit: no systemd to ask")
				}
				if q.Cgroup, err = a.env.Units.UnitCgroup(ctx, unit); err != nil {
					return fmt.Errorf("--unit: %w", err)
				}
			}
			rs, err := a.explainRuleset(ctx, file, live)
			if err != nil {
				return err
			}
			if live {
				a.describeMembership(ctx, rs, q.UID)
			}
			isLocal, err := explain.HostAddrs()
			if err != nil {
				return fmt.Errorf("list this host's addresses: %w", err)
			}
			res := explain.Evaluate(rs, q, isLocal)
			if asJSON {
				return writeJSON(a.stdout, res)
			}
			who := fmt.Sprintf("uid %d", q.UID)
			if user != "" {
				who = fmt.Sprintf("%s (uid %d)", user, q.UID)
			}
			what := fmt.Sprintf("connecting to %s", to)
			if q.Dir == ir.Serve {
				what = fmt.Sprintf("accepting on local %s", serve)
			}
			decider := "the outbound default"
			if res.Rule != nil {
				decider = fmt.Sprintf("rule %d %q", res.Position, *res.Rule)
			}
			fmt.Fprintf(a.stdout, "%s %s: %s, by %s\n", who, what, strings.ToUpper(string(res.Verdict)), decider)
			for _, r := range res.Reasons {
				fmt.Fprintf(a.stdout, "  - %s\n", r)
			}
			return nil
		},
	}
	policyFlag(cmd, &file)
	cmd.Flags().StringVar(&user, "user", "", "account name")
	cmd.Flags().Int64Var(&uid, "uid", -1, "uid")
	cmd.Flags().StringVar(&to, "to", "", "HOST:PORT/PROTO, IPv6 in brackets: [::1]:992/tcp")
	cmd.Flags().StringVar(&serve, "serve", "", "PORT/PROTO: accepting inbound connections on this local port")
	cmd.Flags().StringVar(&unit, "unit", "", "the systemd unit the process runs in")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().BoolVar(&live, "live", false, "explain what is loaded now (the ruleset recorded at the last apply) instead of a policy file")
	return cmd
}

// explainRuleset is the policy file's ruleset, or with live the one
// recorded when the loaded ruleset was applied; a live table that was
// changed since is reported, since explain cannot see hand edits.
func (a *app) explainRuleset(ctx context.Context, file string, live bool) (*ir.Ruleset, error) {
	if !live {
		return a.load(ctx, file)
	}
	rec, err := a.store().LoadApplied()
	if err != nil {
		return nil, fmt.Errorf("--live: %w", err)
	}
	if rec.Ruleset == nil {
		return nil, errors.New("--live: the state file holds no ruleset")
	}
	b, err := newBackend(rec.Backend)
	if err != nil {
		return nil, err
	}
	listing, err := b.Listing(ctx)
	if err != nil {
		return nil, err
	}
	if listing == "" {
		return nil, fmt.Errorf("--live: nothing is loaded (the ruleset applied %s is gone; ownerwall restore loads it)", rec.AppliedAt.Format("2006-01-02 15:04:05"))
	}
	if drifted, err := a.driftOf(ctx, b, rec, listing); err != nil || len(drifted) > 0 {
		fmt.Fprintln(a.stderr, "ownerwall: warning: the live ruleset was changed since it was applied (see ownerwall status); explaining what was applied")
	}
	return rec.Ruleset, nil
}

// parseTo reads HOST:PORT/PROTO; the protocol defaults to tcp.
func parseTo(s string) (netip.Addr, uint16, string, error) {
	hostPort, proto, _ := strings.Cut(s, "/")
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil {
		return netip.Addr{}, 0, "", fmt.Errorf("--to %q: want ADDRESS:PORT/PROTO (IPv6 in brackets)", s)
	}
	proto, err = checkProto(proto)
	if err != nil {
		return netip.Addr{}, 0, "", fmt.Errorf("--to %q: %w", s, err)
	}
	if ap.Port() == 0 && (proto == "tcp" || proto == "udp") {
		return netip.Addr{}, 0, "", fmt.Errorf("--to %q: port 0", s)
	}
	return ap.Addr().WithZone("").Unmap(), ap.Port(), proto, nil
}

func parsePortProto(s string) (uint16, string, error) {
	port, proto, _ := strings.Cut(s, "/")
	v, err := strconv.ParseUint(port, 10, 16)
	if err != nil || v == 0 {
		return 0, "", fmt.Errorf("--serve %q: want PORT/PROTO", s)
	}
	if proto, err = checkProto(proto); err != nil || (proto != "tcp" && proto != "udp") {
		return 0, "", fmt.Errorf("--serve %q: the protocol is tcp or udp", s)
	}
	return uint16(v), proto, nil
}

func checkProto(p string) (string, error) {
	switch p = strings.ToLower(p); p {
	case "":
		return "tcp", nil
	case "tcp", "udp", "icmp", "icmpv6", "sctp":
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q", p)
}

// describeMembership fills in, for a ruleset read back from the state,
// how uid belongs to each user and group principal (which the state does
// not record), as the accounts database says now.
func (a *app) describeMembership(ctx context.Context, rs *ir.Ruleset, uid uint32) {
	acct, err := a.env.Dir.LookupUID(ctx, uid)
	if err != nil {
		return // no account: explain says "uid N is in ..."
	}
	for ri := range rs.Rules {
		r := &rs.Rules[ri]
		for _, ps := range [][]ir.Principal{r.Who, r.Except} {
			for i := range ps {
				p := &ps[i]
				if !ir.ContainsUID(p.UIDs, uid) {
					continue
				}
				desc := ""
				switch p.Kind {
				case "user":
					desc = "the account " + acct.Name
				case "group", "gid":
					var g ident.Group
					if name, ok := strings.CutPrefix(p.Ref, "group:"); ok {
						g, err = a.env.Dir.LookupGroup(ctx, name)
					} else if n, perr := strconv.ParseUint(strings.TrimPrefix(p.Ref, "gid:"), 10, 32); perr == nil {
						g, err = a.env.Dir.LookupGID(ctx, uint32(n))
					}
					if err != nil || g.Name == "" {
						continue
					}
					via := ident.Supplementary
					if acct.GID == g.GID {
						via = ident.Primary
					}
					desc = fmt.Sprintf("%s is a %s member of %s", acct.Name, via, g.Name)
				default:
					continue
				}
				p.Via = ir.ViaText{uid: desc}
			}
		}
	}
}
