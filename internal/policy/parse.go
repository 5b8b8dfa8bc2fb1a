package policy

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// MaxFileSize bounds what Parse reads; a policy is a page, not a database.
const MaxFileSize = 16 << 20

// Parse parses and validates a policy. file is used in problem positions.
// On any problem it returns a nil policy and Problems (every problem found,
// in file order).
func Parse(file string, data []byte) (*Policy, error) {
	c := &collector{file: file}
	if len(data) > MaxFileSize {
		c.addf(Pos{Line: 1, Col: 1}, "the file is larger than %d bytes", MaxFileSize)
		return nil, c.problems
	}
	// A CRLF file reads as its LF twin, same positions and same values;
	// source (source.go) relies on it, counting each CR and LF as a line.
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	root := parseYAML(c, data)
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	p := &Policy{File: file, Outbound: Accept, Services: map[string]*Dest{}}
	decodePolicy(c, root, p)
	if len(c.problems) > 0 {
		c.problems.Sort()
		return nil, c.problems
	}
	return p, nil
}

// fields checks a mapping's keys against the allowed ones and returns them
// by name.
func fields(c *collector, n *node, what string, allowed ...string) map[string]keyValue {
	out := map[string]keyValue{}
	if n.kind != mapNode {
		c.addf(n.pos, "%s must be a mapping, not %s", what, n.kind)
		return nil
	}
	for _, kv := range n.keys {
		ok := false
		for _, a := range allowed {
			if kv.key == a {
				ok = true
				break
			}
		}
		if !ok {
			c.addf(kv.pos, "unknown key %q in %s (allowed: %s)%s", kv.key, what, strings.Join(allowed, ", "), suggest(kv.key, allowed))
			continue
		}
		out[kv.key] = kv
	}
	return out
}

func suggest(word string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(word), a); d < bestD {
			best, bestD = a, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func decodePolicy(c *collector, root *node, p *Policy) {
	f := fields(c, root, "the policy", "version", "outbound", "services", "rules")
	if f == nil {
		return
	}
	if kv, ok := f["version"]; !ok {
		c.addf(root.pos, "missing \"version: 1\"")
	} else if kv.value.kind != scalarNode || kv.value.quoted || kv.value.scalar != "1" {
		c.addf(kv.value.pos, "unsupported version %q: this ownerwall reads version 1", kv.value.scalar)
	} else {
		p.Version = 1
	}
	if kv, ok := f["outbound"]; ok {
		p.OutboundPos = kv.value.pos
		if a, ok := decodeAction(c, kv.value, "outbound"); ok {
			p.Outbound = a
		}
	}
	if kv, ok := f["services"]; ok && kv.value.kind != nullNode {
		if kv.value.kind != mapNode {
			c.addf(kv.value.pos, "services must be a mapping of name: destination")
		} else {
			for _, s := range kv.value.keys {
				if !validServiceName(s.key) {
					c.addf(s.pos, "service name %q: use letters, digits, '-', '_' and '.'", s.key)
					continue
				}
				if d := decodeDest(c, s.value, To); d != nil {
					p.Services[s.key] = d
				} else {
					p.broken = append(p.broken, s.key) // reported already
				}
			}
		}
	}
	kv, ok := f["rules"]
	if !ok || kv.value.kind == nullNode {
		return
	}
	if kv.value.kind != seqNode {
		c.addf(kv.value.pos, "rules must be a list")
		return
	}
	for i, item := range kv.value.items {
		if r := decodeRule(c, p, item, i+1); r != nil {
			p.Rules = append(p.Rules, r)
		}
	}
}

func validServiceName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func decodeAction(c *collector, n *node, what string) (Action, bool) {
	if n.kind == scalarNode {
		switch a := Action(n.scalar); a {
		case Accept, Reject, Drop:
			return a, true
		}
	}
	c.addf(n.pos, "%s must be accept, reject or drop, not %q", what, n.scalar)
	return "", false
}

func decodeRule(c *collector, p *Policy, n *node, index int) *Rule {
	f := fields(c, n, fmt.Sprintf("rule %d", index), "name", "to", "serve", "who", "except", "action", "log")
	if f == nil {
		return nil
	}
	before := len(c.problems)
	r := &Rule{Index: index, Pos: n.pos, Name: fmt.Sprintf("rule %d", index)}
	if kv, ok := f["name"]; ok {
		if kv.value.kind != scalarNode || strings.TrimSpace(kv.value.scalar) == "" {
			c.addf(kv.value.pos, "name must be a non-empty text")
		} else if len(kv.value.scalar) > 200 || strings.ContainsAny(kv.value.scalar, "\"\n\r\\") {
			c.addf(kv.value.pos, "name must be at most 200 characters with no quotes, backslashes or line breaks")
		} else {
			r.Name = kv.value.scalar
		}
	}
	to, hasTo := f["to"]
	serve, hasServe := f["serve"]
	switch {
	case hasTo && hasServe:
		c.addf(serve.pos, "rule %q has both to and serve: a rule has exactly one", r.Name)
	case !hasTo && !hasServe:
		c.addf(n.pos, "rule %q has neither to nor serve: a rule has exactly one", r.Name)
	case hasTo:
		r.Dir = To
		r.Service, r.Dest = ruleDest(c, p, to.value, To)
	default:
		r.Dir = Serve
		r.Service, r.Dest = ruleDest(c, p, serve.value, Serve)
	}
	if kv, ok := f["who"]; ok {
		r.Who = decodePrincipals(c, kv.value, "who")
		if kv.value.kind == seqNode && len(kv.value.items) == 0 {
			c.addf(kv.value.pos, "who is an empty list: the rule would match nobody (leave who out for everyone)")
		}
	} else {
		r.Who = []Principal{{Kind: KindEveryone, Text: "everyone", Pos: n.pos}}
	}
	if kv, ok := f["except"]; ok {
		r.Except = decodePrincipals(c, kv.value, "except")
	}
	if kv, ok := f["action"]; !ok {
		c.addf(n.pos, "rule %q has no action (accept, reject or drop)", r.Name)
	} else if a, ok := decodeAction(c, kv.value, "action"); ok {
		r.Action = a
	}
	if kv, ok := f["log"]; ok {
		switch {
		case kv.value.kind == scalarNode && !kv.value.quoted && kv.value.scalar == "true":
			r.Log = true
		case kv.value.kind == scalarNode && !kv.value.quoted && kv.value.scalar == "false":
		default:
			c.addf(kv.value.pos, "log must be true or false")
		}
	}
	if len(c.problems) != before {
		return nil
	}
	return r
}

func ruleDest(c *collector, p *Policy, n *node, dir Direction) (string, *Dest) {
	if n.kind == scalarNode {
		d, ok := p.Services[n.scalar]
		if !ok && slices.Contains(p.broken, n.scalar) {
			return "", nil // its own problem is reported where it is defined
		}
		if !ok {
			names := make([]string, 0, len(p.Services))
			for k := range p.Services {
				names = append(names, k)
			}
			sort.Strings(names)
			c.addf(n.pos, "no service named %q%s", n.scalar, suggest(n.scalar, names))
			return "", nil
		}
		if dir == Serve {
			for _, h := range d.Hosts {
				if h.Kind != HostLocal {
					c.addf(n.pos, "serve names service %q, whose host is not local: serve takes only local ports", n.scalar)
					return "", nil
				}
			}
			if d.AllProtocols() {
				c.addf(n.pos, "serve names service %q, which gives no tcp or udp port", n.scalar)
				return "", nil
			}
		}
		return n.scalar, d
	}
	return "", decodeDest(c, n, dir)
}

func decodeDest(c *collector, n *node, dir Direction) *Dest {
	allowed := []string{"host", "tcp", "udp"}
	what := "a destination"
	if dir == Serve {
		allowed = []string{"tcp", "udp"}
		what = "serve (it takes only tcp and udp, the local ports)"
	}
	f := fields(c, n, what, allowed...)
	if f == nil {
		return nil
	}
	before := len(c.problems)
	d := &Dest{Pos: n.pos}
	if kv, ok := f["host"]; ok {
		d.Hosts = decodeHosts(c, kv.value)
	}
	if kv, ok := f["tcp"]; ok {
		d.TCP = decodePorts(c, kv.value, "tcp")
	}
	if kv, ok := f["udp"]; ok {
		d.UDP = decodePorts(c, kv.value, "udp")
	}
	if dir == Serve && d.AllProtocols() {
		c.addf(n.pos, "serve needs tcp or udp: the local ports it governs")
	}
	if len(c.problems) != before {
		return nil
	}
	return d
}

func decodePorts(c *collector, n *node, proto string) Ports {
	ps := Ports{Given: true, Pos: n.pos}
	items := []*node{n}
	if n.kind == seqNode {
		items = n.items
		if len(items) == 0 {
			c.addf(n.pos, "%s is an empty list: give ports, or any", proto)
		}
	}
	for _, it := range items {
		if it.kind != scalarNode {
			c.addf(it.pos, "%s takes a port, a range \"6000-6010\", a list of these, or any", proto)
			continue
		}
		if it.scalar == "any" {
			if len(items) > 1 {
				c.addf(it.pos, "%s: any cannot be combined with ports", proto)
			}
			ps.Any = true
			continue
		}
		r, err := parsePortRange(it.scalar)
		if err != nil {
			c.addf(it.pos, "%s: %v", proto, err)
			continue
		}
		ps.Ranges = append(ps.Ranges, r)
	}
	return ps
}

func parsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err := parsePort(lo)
	if err != nil {
		return PortRange{}, err
	}
	if !isRange {
		return PortRange{a, a}, nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return PortRange{}, err
	}
	if b < a {
		return PortRange{}, fmt.Errorf("range %q runs backwards", s)
	}
	return PortRange{a, b}, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v < 1 || v > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(v), nil
}
