// Package compile turns a policy and the host's identities into the
// backend-neutral ruleset (package ir).
package compile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// Env is where compile looks identities and names up.
type Env struct {
	Dir   ident.Directory
	Units ident.Units
	Hosts ident.Hosts
}

// Compile resolves every principal and host of p and builds the ruleset.
// Resolution failures come back as policy.Problems, one per reference.
func Compile(ctx context.Context, p *policy.Policy, env Env) (*ir.Ruleset, error) {
	n := countPrincipals(p)
	r := &resolver{env: env, file: p.File, groups: map[string]ir.Principal{},
		// one allocation for all, not one per rule and per user
		free: make([]ir.Principal, n.all), vias: make([]accountVia, 0, n.users)}
	if pf, ok := env.Dir.(prefetcher); ok && n.groups > 0 {
		if err := pf.Prefetch(ctx); err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
	}
	rs := &ir.Ruleset{Source: p.File, Outbound: ir.Action(p.Outbound), Stateful: p.Outbound != policy.Accept}
	rs.Rules = make([]ir.Rule, 0, len(p.Rules))
	for _, pr := range p.Rules {
		rule := ir.Rule{Index: pr.Index, Name: pr.Name, Dir: ir.Direction(pr.Dir), Action: ir.Action(pr.Action), Log: pr.Log}
		rule.Match = r.match(ctx, pr)
		rule.Who = r.principals(ctx, pr.Who)
		rule.Except = r.principals(ctx, pr.Except)
		rs.Rules = append(rs.Rules, rule)
		if rule.Dir == ir.To && (rule.Match.AllProtocols || rule.Match.UDP != nil) {
			rs.NewFlowsOnly = true
		}
	}
	rs.NewFlowsOnly = rs.NewFlowsOnly || rs.Stateful
	if len(r.problems) > 0 {
		r.problems.Sort()
		return nil, r.problems
	}
	buildDispatch(rs)
	return rs, nil
}

// prefetcher is a directory that can read all accounts and groups at
// once (ident.NSS).
type prefetcher interface {
	Prefetch(ctx context.Context) error
}

// principalCount counts a policy's principal references: all, users, and
// groups (a compile of a policy naming a group reads every account and
// every group).
type principalCount struct{ all, users, groups int }

func countPrincipals(p *policy.Policy) principalCount {
	var n principalCount
	for _, r := range p.Rules {
		for _, ps := range [2][]policy.Principal{r.Who, r.Except} {
			n.all += len(ps)
			for i := range ps {
				switch ps[i].Kind {
				case policy.KindUser:
					n.users++
				case policy.KindGroup, policy.KindGID:
					n.groups++
				}
			}
		}
	}
	return n
}

type resolver struct {
	env       Env
	file      string
	problems  policy.Problems
	groups    map[string]ir.Principal
	primaries *ident.PrimaryIndex // built at the first group
	free      []ir.Principal      // room for the rules' principals
	vias      []accountVia        // room for the user principals' Via
}

func (r *resolver) fail(pos policy.Pos, format string, args ...any) {
	r.problems = append(r.problems, policy.NewProblem(r.file, pos, format, args...))
}

// describe turns a lookup error into the text of a problem.
func describe(what string, err error) string {
	if errors.Is(err, ident.ErrNotFound) {
		return fmt.Sprintf("%s does not resolve", what)
	}
	return fmt.Sprintf("%s: %v", what, err)
}

// principals resolves a rule's who or except list.
func (r *resolver) principals(ctx context.Context, ps []policy.Principal) []ir.Principal {
	if len(ps) == 0 {
		return nil
	}
	if len(r.free) < len(ps) {
		r.free = make([]ir.Principal, len(ps))
	}
	out := r.free[:len(ps):len(ps)]
	r.free = r.free[len(ps):]
	for i, p := range ps {
		out[i] = r.principal(ctx, p)
	}
	return out
}

func (r *resolver) principal(ctx context.Context, p policy.Principal) ir.Principal {
	out := ir.Principal{Ref: p.Text, Kind: string(p.Kind)}
	switch p.Kind {
	case policy.KindEveryone:
		out.UIDs = []ir.Interval{{Lo: 0, Hi: ir.MaxUID}}
	case policy.KindUID:
		out.UIDs = []ir.Interval{{Lo: p.Lo, Hi: p.Hi}}
	case policy.KindUser:
		a, err := r.env.Dir.LookupUser(ctx, p.Name)
		if err != nil {
			r.fail(p.Pos, "%s", describe(fmt.Sprintf("user %q", p.Name), err))
			return out
		}
		r.vias = append(r.vias, accountVia{uid: a.UID, name: a.Name, uids: [1]ir.Interval{{Lo: a.UID, Hi: a.UID}}})
		v := &r.vias[len(r.vias)-1]
		out.UIDs, out.Via = v.uids[:], v
	case policy.KindGroup, policy.KindGID:
		key := p.Text
		if cached, ok := r.groups[key]; ok {
			return cached
		}
		var g ident.Group
		var err error
		if p.Kind == policy.KindGroup {
			g, err = r.env.Dir.LookupGroup(ctx, p.Name)
		} else if g, err = r.env.Dir.LookupGID(ctx, p.Lo); errors.Is(err, ident.ErrNotFound) {
			g, err = ident.Group{Name: fmt.Sprintf("gid %d", p.Lo), GID: p.Lo}, nil // numeric: no entry needed
		}
		if err != nil {
			what := fmt.Sprintf("group %q", p.Name)
			if p.Kind == policy.KindGID {
				what = fmt.Sprintf("gid %d", p.Lo)
			}
			r.fail(p.Pos, "%s", describe(what, err))
			return out
		}
		if r.primaries == nil {
			if r.primaries, err = ident.NewPrimaryIndex(ctx, r.env.Dir); err != nil {
				r.fail(p.Pos, "members of group %q: %v", g.Name, err)
				return out
			}
		}
		members, err := r.primaries.Members(ctx, r.env.Dir, g)
		if err != nil {
			r.fail(p.Pos, "members of group %q: %v", g.Name, err)
			return out
		}
		uids := make([]ir.Interval, len(members))
		for i, m := range members {
			uids[i] = ir.Interval{Lo: m.UID, Hi: m.UID}
		}
		out.UIDs = normalizeOwned(uids)
		out.Via = &groupVia{group: g.Name, members: members}
		r.groups[key] = out
	case policy.KindUnit:
		if r.env.Units == nil {
			r.fail(p.Pos, "unit %q: no systemd to ask", p.Name)
			return out
		}
		path, err := r.env.Units.UnitCgroup(ctx, p.Name)
		if err != nil {
			r.fail(p.Pos, "%s", describe(fmt.Sprintf("unit %q", p.Name), err))
			return out
		}
		out.Cgroup, out.Unit = strings.Trim(path, "/"), p.Name
		if strings.ContainsAny(out.Cgroup, "\"\n") {
			r.fail(p.Pos, "unit %q: its cgroup path %q cannot be matched", p.Name, path)
		}
	}
	return out
}

func (r *resolver) match(ctx context.Context, pr *policy.Rule) ir.Match {
	d := pr.Dest
	m := ir.Match{AllProtocols: d.AllProtocols()}
	if d.TCP.Given {
		m.TCP = ports(d.TCP)
	}
	if d.UDP.Given {
		m.UDP = ports(d.UDP)
	}
	if pr.Dir == policy.Serve || len(d.Hosts) == 0 {
		m.AnyHost = true
		return m
	}
	for _, h := range d.Hosts {
		switch h.Kind {
		case policy.HostLocal:
			m.Local = true
		case policy.HostPrefix:
			m.Nets = append(m.Nets, h.Prefix)
		case policy.HostName:
			if r.env.Hosts == nil {
				r.fail(h.Pos, "host %q: no resolver to ask", h.Name)
				continue
			}
			addrs, err := r.env.Hosts.LookupHost(ctx, h.Name)
			if err == nil && len(addrs) == 0 {
				err = ident.ErrNotFound
			}
			if err != nil {
				r.fail(h.Pos, "%s", describe(fmt.Sprintf("host %q", h.Name), err))
				continue
			}
			m.Names = append(m.Names, ir.ResolvedName{Name: h.Name, Addrs: addrs})
			for _, a := range addrs {
				a = a.Unmap()
				m.Nets = append(m.Nets, netipPrefix(a))
			}
		}
	}
	m.Nets = sortNets(m.Nets)
	return m
}

func ports(p policy.Ports) *ir.Ports {
	if p.Any {
		return &ir.Ports{Any: true}
	}
	if len(p.Ranges) == 1 { // the usual case, in one allocation, not two
		one := &struct {
			ports  ir.Ports
			ranges [1]ir.PortRange
		}{ranges: [1]ir.PortRange{{Lo: p.Ranges[0].Lo, Hi: p.Ranges[0].Hi}}}
		one.ports.Ranges = one.ranges[:]
		return &one.ports
	}
	rs := make([]ir.PortRange, 0, len(p.Ranges))
	for _, r := range p.Ranges {
		rs = append(rs, ir.PortRange{Lo: r.Lo, Hi: r.Hi})
	}
	slices.SortFunc(rs, func(a, b ir.PortRange) int { return cmp.Compare(a.Lo, b.Lo) })
	merged := rs[:0]
	for _, r := range rs {
		if n := len(merged); n > 0 && uint32(r.Lo) <= uint32(merged[n-1].Hi)+1 {
			merged[n-1].Hi = max(merged[n-1].Hi, r.Hi)
			continue
		}
		merged = append(merged, r)
	}
	return &ir.Ports{Ranges: merged}
}
