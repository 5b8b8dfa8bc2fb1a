package nft

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// render compiles src (named file) against the golden world and renders it.
func render(t *testing.T, file, src string) (*ir.Ruleset, string) {
	t.Helper()
	p, err := policy.Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	rs, err := compile.Compile(context.Background(), p, goldenEnv(t))
	if err != nil {
		t.Fatalf("compile:\n%v", err)
	}
	return rs, Script(rs)
}

func lines(script string) []string { return strings.Split(strings.TrimSpace(script), "\n") }

func has(script, line string) bool {
	for _, l := range lines(script) {
		if l == line {
			return true
		}
	}
	return false
}

func outputRulesOf(script string) []string {
	var out []string
	for _, l := range lines(script) {
		if r, ok := strings.CutPrefix(l, "add rule inet ownerwall output "); ok {
			out = append(out, r)
		}
	}
	return out
}

func TestFlushScript(t *testing.T) {
	if got, want := FlushScript(), "add table inet ownerwall\ndelete table inet ownerwall\n"; got != want {
		t.Errorf("FlushScript() = %q, want %q", got, want)
	}
}

// TestScriptReplacesTable: one transaction creates the table if needed,
// deletes it and builds it again, so a load swaps the whole ruleset.
func TestScriptReplacesTable(t *testing.T) {
	_, s := render(t, "p.yaml", "version: 1\nrules:\n  - to: {tcp: 80}\n    action: drop\n")
	l := lines(s)
	if len(l) < 3 || l[0] != "add table inet ownerwall" || l[1] != "delete table inet ownerwall" ||
		!strings.HasPrefix(l[2], "add table inet ownerwall { comment ") {
		t.Errorf("script does not start by replacing the table:\n%s", s)
	}
	for _, line := range l {
		if !strings.Contains(line, " inet ownerwall") {
			t.Errorf("line outside ownerwall's table: %q", line)
		}
		if strings.HasPrefix(line, "flush ") || strings.Contains(line, "ruleset") {
			t.Errorf("script touches more than its table: %q", line)
		}
	}
}

func TestOutputShortcuts(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"stateless", "version: 1\nrules:\n  - serve: {tcp: 22, udp: 53}\n    action: drop\n", []string{
			"tcp flags & (syn | ack) == ack accept",
			"meta skuid vmap @uid_exact",
			"meta skuid vmap @uid_profile",
		}},
		{"stateful, no serve", "version: 1\noutbound: drop\nrules:\n  - to: {tcp: 22}\n    action: accept\n", []string{
			"icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept",
			"meta l4proto tcp ct state established,related accept",
			"meta l4proto != tcp ct state established,related accept",
			"meta skuid vmap @uid_exact",
			"meta skuid vmap @uid_profile",
		}},
		// a listener's SYN-ACK is a reply: it must reach the serve rules.
		{"stateful, serve tcp", "version: 1\noutbound: reject\nrules:\n  - serve: {tcp: 22}\n    action: drop\n", []string{
			"icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept",
			"tcp flags & (syn | ack) != syn | ack ct state established,related accept",
			"meta l4proto != tcp ct state established,related accept",
			"meta skuid vmap @uid_exact",
			"meta skuid vmap @uid_profile",
		}},
		// UDP sent from a served port may be a reply too.
		{"stateful, serve udp", "version: 1\noutbound: drop\nrules:\n  - serve: {udp: 53}\n    action: drop\n", []string{
			"icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept",
			"meta l4proto tcp ct state established,related accept",
			"meta l4proto != { tcp, udp } ct state established,related accept",
			"meta skuid vmap @uid_exact",
			"meta skuid vmap @uid_profile",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, s := render(t, "p.yaml", c.src)
			if got := outputRulesOf(s); !equal(got, c.want) {
				t.Errorf("output chain:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			nftCheckScript(t, s)
		})
	}
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) && len(a) == len(b) }

// TestProfileTail: with a stateful ruleset every profile chain ends with
// the reply shortcut and the outbound default; stateless ones fall off
// their end (goto: the output chain's accept policy).
func TestProfileTail(t *testing.T) {
	for _, c := range []struct {
		outbound string
		tail     []string
	}{
		{"accept", nil},
		{"drop", []string{"ct state established,related accept", "drop"}},
		{"reject", []string{"ct state established,related accept", "goto reject_packet"}},
	} {
		_, s := render(t, "p.yaml", "version: 1\noutbound: "+c.outbound+"\nrules:\n  - to: {tcp: 80}\n    who: [alice]\n    action: accept\n")
		var chain []string
		for _, l := range lines(s) {
			if r, ok := strings.CutPrefix(l, "add rule inet ownerwall profile_1 "); ok {
				chain = append(chain, r)
			}
		}
		want := append([]string{`tcp flags & (syn | ack) == syn tcp dport 80 counter name "rule_1" accept`}, c.tail...)
		if !equal(chain, want) {
			t.Errorf("outbound %s: profile_1 = %q, want %q", c.outbound, chain, want)
		}
		if got := lookupUID(t, s, "", 1002); got != "goto profile_1" {
			t.Errorf("outbound %s: alice (1002) goes to %q, want profile_1:\n%s", c.outbound, got, s)
		}
		none := "" // no element: off the end of the output chain, accepted
		if c.outbound != "accept" {
			none = "goto no_rule"
		}
		for _, uid := range []uint32{0, 1001, 1003, ir.MaxUID} {
			if got := lookupUID(t, s, "", uid); got != none {
				t.Errorf("outbound %s: uid %d without rules goes to %q, want %q", c.outbound, uid, got, none)
			}
		}
	}
}

// TestUnitMapCoversEveryUID: a socket in a unit's cgroup must be decided by
// the unit's map, never fall through to the default one; uids without a
// rule there are accepted at once (outbound accept).
func TestUnitMapCoversEveryUID(t *testing.T) {
	rs, s := render(t, "p.yaml", `version: 1
rules:
  - to: {tcp: 992}
    who: ["unit:stunnel.service"]
    except: [root]
    action: accept
  - to: {tcp: 992}
    who: [alice]
    action: reject
`)
	if !HasUnits(rs) {
		t.Error("HasUnits = false")
	}
	for _, c := range []struct {
		unit string
		uid  uint32
		want string
	}{
		{"_unit1", 0, "accept"},
		{"_unit1", 1, "goto profile_1"},
		{"_unit1", 1001, "goto profile_1"},
		{"_unit1", 1002, "goto profile_2"},
		{"_unit1", 1003, "goto profile_1"},
		{"_unit1", ir.MaxUID, "goto profile_1"},
		{"", 1002, "goto profile_3"},
		{"", 1001, ""},
	} {
		if got := lookupUID(t, s, c.unit, c.uid); got != c.want {
			t.Errorf("map%s: uid %d goes to %q, want %q", c.unit, c.uid, got, c.want)
		}
	}
	want := []string{
		"tcp flags & (syn | ack) == ack accept",
		`socket cgroupv2 level 2 "system.slice/stunnel.service" meta skuid vmap @uid_exact_unit1`,
		`socket cgroupv2 level 2 "system.slice/stunnel.service" meta skuid vmap @uid_profile_unit1`,
		"meta skuid vmap @uid_exact",
		"meta skuid vmap @uid_profile",
	}
	if got := outputRulesOf(s); !equal(got, want) {
		t.Errorf("output chain = %q, want %q", got, want)
	}
	if _, s := render(t, "p.yaml", "version: 1\n"); strings.Contains(s, "cgroupv2") {
		t.Error("cgroupv2 match without unit principals")
	}
}

var (
	commentRe = regexp.MustCompile(`comment "([^"]*)"`)
	prefixRe  = regexp.MustCompile(`log prefix "([^"]*)"`)
)

// nftLimits checks the limits nft enforces on quoted strings: comments of
// at most 128 bytes (NFTNL_UDATA_COMMENT_MAXLEN), log prefixes of at most
// 127 (NF_LOG_PREFIXLEN - 1), and says what breaks them.
func nftLimits(script string) []string {
	var bad []string
	for _, m := range commentRe.FindAllStringSubmatch(script, -1) {
		if len(m[1]) > 128 {
			bad = append(bad, fmt.Sprintf("comment of %d bytes: %.60q...", len(m[1]), m[1]))
		}
	}
	for _, m := range prefixRe.FindAllStringSubmatch(script, -1) {
		if len(m[1]) > 127 {
			bad = append(bad, fmt.Sprintf("log prefix of %d bytes", len(m[1])))
		}
		if !utf8.ValidString(m[1]) {
			bad = append(bad, fmt.Sprintf("log prefix %q is not valid UTF-8", m[1]))
		}
		if strings.Contains(m[1], `\`) {
			bad = append(bad, fmt.Sprintf("log prefix %q holds a backslash: nft keeps escapes literally", m[1]))
		}
	}
	return bad
}

// TestNftStringLimits renders policies the parser accepts at its limits;
// nft must accept what apply would load.
func TestNftStringLimits(t *testing.T) {
	var many strings.Builder
	many.WriteString("version: 1\nrules:\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&many, "  - to: {tcp: %d}\n    action: drop\n", 1000+i)
	}
	cases := []struct {
		name, file, src, bug string
	}{
		{"rule name of 100 bytes", "p.yaml",
			"version: 1\nrules:\n  - name: " + strings.Repeat("n", 100) + "\n    to: {tcp: 80}\n    log: true\n    action: drop\n", ""},
		{"rule name of 200 bytes", "p.yaml",
			"version: 1\nrules:\n  - name: " + strings.Repeat("n", 200) + "\n    to: {tcp: 80}\n    action: drop\n",
			"a rule name of 129-200 bytes (the parser allows 200) becomes a counter comment nft refuses: comment too long, 128 characters maximum (render.go Build)"},
		{"40 rules in one profile", "p.yaml", many.String(),
			"a profile chain's comment lists every rule number (\"rules 1, 2, ..., 40\"): past ~33 rules it exceeds nft's 128-byte comment limit and apply fails (render.go Build)"},
		{"long policy path", "/etc/ownerwall/policies/production-web-frontend-cluster-eu-west-1/policy.yaml",
			"version: 1\n",
			"the table comment embeds the policy path: a path over 68 bytes makes it exceed nft's 128-byte comment limit and apply fails (render.go Build)"},
		{"log prefix cut inside a UTF-8 character", "p.yaml",
			"version: 1\nrules:\n  - name: a" + strings.Repeat("é", 50) + "\n    to: {tcp: 80}\n    log: true\n    action: drop\n",
			"logPrefix cuts the rule name at byte 80, inside the 40th \"é\"; the %q that quotes the prefix turns the stray byte into the text \\xc3, which nft logs literally (render.go logPrefix, ruleTexts)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, s := render(t, c.file, c.src)
			if bad := nftLimits(s); len(bad) > 0 {
				if c.bug != "" {
					fixedBug(t, c.bug)
				}
				t.Errorf("script breaks nft limits:\n%s", strings.Join(bad, "\n"))
			}
			nftCheckScript(t, s)
		})
	}
}

// TestCgroupPathVerbatim: systemd escapes unit names (a '-' inside a
// name part is \x2d), so cgroup paths hold backslashes. nft does not
// process escapes in quoted strings: the path must reach it byte for byte,
// or nft looks up a cgroup that does not exist and apply fails.
func TestCgroupPathVerbatim(t *testing.T) {
	env := goldenEnv(t)
	path := `system.slice/system-systemd\x2dcryptsetup.slice/systemd-cryptsetup@luks\x2d1.service`
	st := env.Dir.(*ident.Static)
	st.UnitPaths[`systemd-cryptsetup@luks\x2d1.service`] = path
	p, err := policy.Parse("p.yaml", []byte("version: 1\nrules:\n  - to: {tcp: 80}\n    who: ['unit:systemd-cryptsetup@luks\\x2d1.service']\n    action: drop\n"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := compile.Compile(context.Background(), p, env)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Dispatch[0].Cgroup != path {
		t.Fatalf("dispatch cgroup = %q, want %q", rs.Dispatch[0].Cgroup, path)
	}
	s := Script(rs)
	want := `socket cgroupv2 level 3 "` + path + `" meta skuid vmap @uid_profile_unit1`
	if !has(s, "add rule inet ownerwall output "+want) {
		fixedBug(t, "render.go outputRules quotes the cgroup path with Go's %q, doubling its backslashes (\\x2d); nft takes them literally and finds no such cgroup")
		t.Errorf("output chain = %q\nwant the rule %q", outputRulesOf(s), want)
	}
}

func TestSanitize(t *testing.T) {
	if got, want := sanitize("a\"b\\c\td\x7fe é"), "a_b_c_d_e é"; got != want {
		t.Errorf("sanitize = %q, want %q", got, want)
	}
}

// lookupUID resolves uid as the kernel does in the output chain: the exact
// map of the context (unit "" or "_unitN") first, then its range map. ""
// means no element: the packet goes on.
func lookupUID(t *testing.T, script, unit string, uid uint32) string {
	t.Helper()
	for _, name := range []string{"uid_exact" + unit, "uid_profile" + unit} {
		for _, l := range lines(script) {
			body, ok := strings.CutPrefix(l, "add element inet ownerwall "+name+" { ")
			if !ok {
				continue
			}
			for _, el := range strings.Split(strings.TrimSuffix(body, " }"), ", ") {
				key, verdict, _ := strings.Cut(el, " : ")
				lo, hi, _ := strings.Cut(key, "-")
				if hi == "" {
					hi = lo
				}
				l, err1 := strconv.ParseUint(lo, 10, 32)
				h, err2 := strconv.ParseUint(hi, 10, 32)
				if err1 != nil || err2 != nil {
					t.Fatalf("element %q of %s: not a uid key", el, name)
				}
				if uint64(uid) >= l && uint64(uid) <= h {
					return verdict
				}
			}
		}
	}
	return ""
}
