package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxID is the largest uid or gid a principal may name; 4294967295 is
// (uid_t)-1, which the kernel never gives a process.
const MaxID = 4294967294

func decodePrincipals(c *collector, n *node, what string) []Principal {
	items := []*node{n}
	if n.kind == seqNode {
		items = n.items
	} else if n.kind == nullNode {
		c.addf(n.pos, "%s needs a list of principals", what)
		return nil
	}
	var out []Principal
	for _, it := range items {
		if it.kind != scalarNode {
			c.addf(it.pos, "%s takes names like alice, uid:1000-1999, group:wheel, gid:10, unit:x.service or everyone", what)
			continue
		}
		p, err := ParsePrincipal(it.scalar)
		if err != nil {
			c.addf(it.pos, "%s: %v", what, err)
			continue
		}
		p.Pos = it.pos
		out = append(out, p)
	}
	return out
}

// ParsePrincipal reads one principal reference such as "alice",
// "group:wheel" or "uid:1000-1999".
func ParsePrincipal(s string) (Principal, error) {
	text := strings.TrimSpace(s)
	p := Principal{Text: text}
	if text == "everyone" {
		p.Kind = KindEveryone
		return p, nil
	}
	kind, rest, has := strings.Cut(text, ":")
	if !has {
		if _, err := strconv.ParseUint(text, 10, 64); err == nil {
			return p, fmt.Errorf("%q is a number: write uid:%s or gid:%s", text, text, text)
		}
		kind, rest = "user", text
	}
	switch kind {
	case "user", "group", "unit":
		if !validAccountName(rest, kind == "unit") {
			return p, fmt.Errorf("%q is not a valid %s name", rest, kind)
		}
		p.Kind, p.Name = PrincipalKind(kind), rest
		if kind == "unit" && !strings.Contains(rest, ".") {
			p.Name = rest + ".service"
		}
	case "uid", "gid":
		lo, hi, isRange := strings.Cut(rest, "-")
		a, err := parseID(lo)
		if err != nil {
			return p, fmt.Errorf("%s:%s: %v", kind, rest, err)
		}
		b := a
		if isRange {
			if kind == "gid" {
				return p, fmt.Errorf("gid takes one group id, not a range")
			}
			if b, err = parseID(hi); err != nil {
				return p, fmt.Errorf("%s:%s: %v", kind, rest, err)
			}
			if b < a {
				return p, fmt.Errorf("uid range %q runs backwards", rest)
			}
		}
		p.Kind, p.Lo, p.Hi = PrincipalKind(kind), a, b
	default:
		return p, fmt.Errorf("unknown principal kind %q (user, uid, group, gid, unit, everyone)", kind)
	}
	return p, nil
}

func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || v > MaxID {
		return 0, fmt.Errorf("%q is not an id (0-%d)", s, uint64(MaxID))
	}
	return uint32(v), nil
}

// validAccountName accepts what NSS backends commonly allow (including
// LDAP/AD names with dots, '@' and '\'), and refuses what could never be a
// name: empty, spaces, ':' or control characters.
func validAccountName(s string, unit bool) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == ':' || r == ',' || r == '"' || r == 0x7f {
			return false
		}
		if unit && r == '/' {
			return false
		}
	}
	return true
}
