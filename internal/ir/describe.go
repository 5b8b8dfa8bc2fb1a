package ir

import (
	"fmt"
	"sort"
	"strings"
)

// Describe lists a ruleset as lines that name rules, not chains: one per
// rule, and one per uid range of each dispatch map with the rules that
// apply to it. Two rulesets that load the same behaviour describe the same,
// whatever their profile numbering; plan diffs these lines.
func Describe(rs *Ruleset) []string {
	out := []string{fmt.Sprintf("outbound: %s", rs.Outbound)}
	for _, r := range rs.Rules {
		out = append(out, fmt.Sprintf("rule %d %q: %s %s, who %s%s, %s%s",
			r.Index, r.Name, r.Dir, r.Match.String(), refs(r.Who), exceptText(r.Except), r.Action, logText(r.Log)))
	}
	for _, d := range rs.Dispatch {
		ctx := "uid"
		if d.Unit != "" {
			ctx = "unit " + d.Unit + " (" + d.Cgroup + "), uid"
		}
		for _, u := range d.UIDs {
			rules := "no rule"
			if u.Profile >= 0 {
				rules = "rules " + rs.BlockList(rs.Profiles[u.Profile].Blocks)
			}
			span := fmt.Sprintf("%d", u.Lo)
			if u.Hi != u.Lo {
				span = fmt.Sprintf("%d-%d", u.Lo, u.Hi)
			}
			out = append(out, fmt.Sprintf("%s %s -> %s", ctx, span, rules))
		}
	}
	return out
}

// BlockList names blocks by their rules' positions: "1-3, 5".
func (rs *Ruleset) BlockList(blocks []int) string {
	names := make([]string, 0, len(blocks))
	for _, b := range blocks {
		names = append(names, rs.BlockName(b))
	}
	return strings.Join(names, ", ")
}

// BlockName is a block's rule positions: "5", or "1-3" for several.
func (rs *Ruleset) BlockName(b int) string {
	rules := rs.Blocks[b].Rules
	first, last := rs.Rules[rules[0]].Index, rs.Rules[rules[len(rules)-1]].Index
	if first == last {
		return fmt.Sprint(first)
	}
	return fmt.Sprintf("%d-%d", first, last)
}

func refs(ps []Principal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Ref
	}
	return strings.Join(s, ", ")
}

func exceptText(ps []Principal) string {
	if len(ps) == 0 {
		return ""
	}
	return " except " + refs(ps)
}

func logText(l bool) string {
	if l {
		return ", logged"
	}
	return ""
}

// String describes a match in policy terms.
func (m Match) String() string {
	var parts []string
	switch {
	case m.AllProtocols:
		parts = append(parts, "every protocol")
	default:
		if m.TCP != nil {
			parts = append(parts, "tcp "+m.TCP.String())
		}
		if m.UDP != nil {
			parts = append(parts, "udp "+m.UDP.String())
		}
	}
	var hosts []string
	if m.AnyHost {
		hosts = append(hosts, "any host")
	}
	if m.Local {
		hosts = append(hosts, "local")
	}
	nets := make([]string, len(m.Nets))
	for i, n := range m.Nets {
		nets[i] = n.String()
	}
	sort.Strings(nets)
	hosts = append(hosts, nets...)
	return strings.Join(parts, " and ") + " to " + strings.Join(hosts, ", ")
}

// String lists ports as the policy writes them.
func (p *Ports) String() string {
	if p.Any {
		return "any"
	}
	s := make([]string, len(p.Ranges))
	for i, r := range p.Ranges {
		if r.Lo == r.Hi {
			s[i] = fmt.Sprintf("%d", r.Lo)
		} else {
			s[i] = fmt.Sprintf("%d-%d", r.Lo, r.Hi)
		}
	}
	return strings.Join(s, ",")
}
