package importer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ownerwall/ownerwall/internal/policy"
)

const maxNameLen = 120 // policy allows 200 bytes

// renderYAML writes the policy, with a comment for every line that became
// no rule.
func renderYAML(m *merged, sets []*ruleset) string {
	var b strings.Builder
	b.WriteString("# ownerwall policy, imported by ownerwall import from:\n")
	for _, rs := range sets {
		fmt.Fprintf(&b, "#   %s: the %s *filter table at line %d\n", commentText(rs.file), rs.fam, rs.line)
	}
	if len(sets) == 0 {
		b.WriteString("#   (no *filter table)\n")
	}
	b.WriteString("# Read the warnings and this policy before applying it.\n")
	b.WriteString("version: 1\n")
	fmt.Fprintf(&b, "outbound: %s\n", m.outbound)
	if len(m.rules) == 0 {
		writeNotes(&b, m.notes, m.multi, "")
		b.WriteString("rules: []\n")
		return b.String()
	}
	b.WriteString("rules:\n")
	for _, r := range m.rules {
		writeNotes(&b, r.notes, m.multi, "  ")
		fmt.Fprintf(&b, "  - name: %s\n", quote(ruleName(r, m.multi)))
		fmt.Fprintf(&b, "    %s: %s\n", r.dir, destYAML(r))
		if r.c.who != nil {
			fmt.Fprintf(&b, "    who: [%s]\n", quote(r.c.who.text()))
		}
		if len(r.c.except) > 0 {
			t := make([]string, len(r.c.except))
			for i, p := range r.c.except {
				t[i] = quote(p.text())
			}
			fmt.Fprintf(&b, "    except: [%s]\n", strings.Join(t, ", "))
		}
		fmt.Fprintf(&b, "    action: %s\n", r.action)
		if r.log {
			b.WriteString("    log: true\n")
		}
	}
	writeNotes(&b, m.notes, m.multi, "  ")
	return b.String()
}

func writeNotes(b *strings.Builder, notes []note, multi bool, indent string) {
	for _, n := range notes {
		fmt.Fprintf(b, "%s# %s: %s\n", indent, lineRef(n, multi), commentText(n.src.text))
		fmt.Fprintf(b, "%s#   %s\n", indent, commentText(n.msg))
	}
}

func lineRef(n note, multi bool) string {
	if multi {
		return fmt.Sprintf("%s line %d", famShort(n.fam), n.src.line)
	}
	return fmt.Sprintf("line %d", n.src.line)
}

// ruleName is the rule's comment, or its line and text, shortened.
func ruleName(r *outRule, multi bool) string {
	if name := sanitize(r.comment); name != "" {
		return shorten(name)
	}
	refs := make([]string, len(r.srcs))
	for i, src := range r.srcs {
		refs[i] = fmt.Sprintf("line %d", src.line)
		if multi {
			refs[i] = fmt.Sprintf("%s line %d", famShort(r.fams[i]), src.line)
		}
	}
	return shorten(sanitize(strings.Join(refs, ", ") + r.suffix + ": " + r.srcs[0].text))
}

func famShort(f family) string {
	if f == fam6 {
		return "v6"
	}
	return "v4"
}

// sanitize makes s a valid policy name: printable, one line, no quotes or
// backslashes, blanks collapsed.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\':
			return '/'
		case r == ' ' || !unicode.IsPrint(r) || unicode.IsSpace(r):
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func shorten(s string) string {
	if len(s) <= maxNameLen {
		return s
	}
	cut := maxNameLen - 4
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRight(s[:cut], " ") + " ..."
}

// commentText makes s fit on one comment line.
func commentText(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// quote writes s as a YAML double-quoted string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || !unicode.IsPrint(r):
			if r <= 0xffff {
				fmt.Fprintf(&b, "\\u%04x", r)
			} else {
				fmt.Fprintf(&b, "\\U%08x", r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func destYAML(r *outRule) string {
	var parts []string
	ports := r.c.sports
	if r.dir == policy.To {
		ports = r.c.dports
		switch r.c.hosts.kind {
		case hostLocal:
			parts = append(parts, "host: local")
		case hostList:
			t := make([]string, len(r.c.hosts.list))
			for i, h := range r.c.hosts.list {
				t[i] = quote(h.String())
			}
			if len(t) == 1 {
				parts = append(parts, "host: "+t[0])
			} else {
				parts = append(parts, "host: ["+strings.Join(t, ", ")+"]")
			}
		}
	}
	if r.c.proto != "" {
		rs, all := ports.policyRanges()
		if all {
			parts = append(parts, r.c.proto+": any")
		} else {
			t := make([]string, len(rs))
			for i, pr := range rs {
				if pr.lo == pr.hi {
					t[i] = fmt.Sprint(pr.lo)
				} else {
					t[i] = fmt.Sprintf("\"%d-%d\"", pr.lo, pr.hi)
				}
			}
			if len(t) == 1 {
				parts = append(parts, r.c.proto+": "+t[0])
			} else {
				parts = append(parts, r.c.proto+": ["+strings.Join(t, ", ")+"]")
			}
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
