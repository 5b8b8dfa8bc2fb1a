package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/policy"
)

const head = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"

// importOne imports one IPv4 ruleset named "t.save"; the policy must parse.
func importOne(t *testing.T, text string, opt Options) (*Result, *policy.Policy) {
	t.Helper()
	res, err := Import([]Input{{Name: "t.save", Data: []byte(text)}}, opt)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	checkWarnings(t, res.Warnings, "t.save")
	p, err := policy.Parse("t.yaml", []byte(res.Policy))
	if err != nil {
		t.Fatalf("the policy does not parse: %v\n%s", err, res.Policy)
	}
	return res, p
}

// warningsAt returns the warnings at line, joined.
func warningsAt(res *Result, line int) string {
	var out []string
	for _, w := range res.Warnings {
		if w.Line == line {
			out = append(out, w.Msg)
		}
	}
	return strings.Join(out, "\n")
}

func TestSeedWarnings(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "seed.save"))
	if err != nil {
		t.Fatal(err)
	}
	res, p := importOne(t, string(data), Options{})
	want := []struct {
		line int
		has  string
	}{
		{5, "a guard on 127.0.0.1 only"},
		{6, "a guard on 127.0.0.1 only"},
		{6, "--gid-owner 10 without --suppl-groups"},
		{10, "--gid-owner 10 without --suppl-groups"},
		{9, "never fires: line 8"},
		{10, "never fires: line 8"},
		{11, "never fires: line 8"},
		{12, "--state NEW,ESTABLISHED on an accept"},
		{5, "IPv4 only"},
		{7, "IPv4 only"},
	}
	for _, w := range want {
		if !strings.Contains(warningsAt(res, w.line), w.has) {
			t.Errorf("no warning %q at line %d; warnings:\n%s", w.has, w.line, warningsAt(res, w.line))
		}
	}
	if len(p.Rules) != 7 {
		t.Fatalf("%d rules, want 7:\n%s", len(p.Rules), res.Policy)
	}
	r := p.Rules[0]
	if r.Action != policy.Reject || len(r.Except) != 1 || r.Except[0].Text != "uid:0" ||
		len(r.Dest.Hosts) != 1 || r.Dest.Hosts[0].Prefix.String() != "127.0.0.1/32" || r.Dest.TCP.Ranges[0].Lo != 992 {
		t.Errorf("rule 1 is %+v %+v", r, r.Dest)
	}
	if r := p.Rules[1]; r.Except[0].Text != "gid:10" {
		t.Errorf("rule 2 excepts %v, want gid:10", r.Except)
	}
	for i := 3; i <= 5; i++ {
		if p.Rules[i].Dir != policy.Serve {
			t.Errorf("rule %d is %s, want serve", i+1, p.Rules[i].Dir)
		}
	}
}

func TestCleanHasNoWarnings(t *testing.T) {
	var in []Input
	for _, f := range []string{"clean.save", "clean.v6.save"} {
		in = append(in, readInputFile(t, filepath.Join("testdata", f)))
	}
	res, err := Import(in, Options{Listening: func(string, uint16) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}
	p, err := policy.Parse("clean.yaml", []byte(res.Policy))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 6 {
		t.Errorf("%d rules, want 6 (the two families merged)", len(p.Rules))
	}
}

func TestListening(t *testing.T) {
	text := head + "-A OUTPUT -o lo -p tcp -m tcp --dport 272 -m owner ! --gid-owner 10 --suppl-groups -j REJECT\n" +
		"-A OUTPUT -p udp -m udp --sport 5353 -m owner ! --uid-owner 0 -j DROP\n" +
		"-A OUTPUT -p tcp -m tcp --dport 443 -m owner ! --uid-owner 0 -j DROP\nCOMMIT\n"
	listening := func(proto string, port uint16) bool { return proto == "tcp" && port == 273 }
	res, _ := importOne(t, text, Options{Listening: listening})
	if w := warningsAt(res, 5); !strings.Contains(w, "nothing listens on tcp port 272 (tcp port 273 does)") {
		t.Errorf("line 5: %q", w)
	}
	if w := warningsAt(res, 6); !strings.Contains(w, "nothing listens on udp port 5353:") {
		t.Errorf("line 6: %q", w)
	}
	if w := warningsAt(res, 7); strings.Contains(w, "listens") {
		t.Errorf("a remote port was checked: %q", w)
	}
	res, _ = importOne(t, text, Options{})
	for _, w := range res.Warnings {
		if strings.Contains(w.Msg, "listens") {
			t.Errorf("Listening nil, but: %v", w)
		}
	}
}

func TestStdinName(t *testing.T) {
	res, err := Import([]Input{{Name: "-", Data: []byte(head + "-A OUTPUT -m string --string x --algo bm -j DROP\nCOMMIT\n")}}, Options{File: "<stdin>"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].String() != "<stdin>:5: warning: not imported: -m string: ownerwall rules do not look into packet contents" {
		t.Errorf("warnings: %v", res.Warnings)
	}
	_, err = Import([]Input{{Data: []byte("junk\n")}}, Options{File: "<stdin>"})
	if err == nil || err.Error() != `<stdin>:1: not iptables-save output: "junk"` {
		t.Errorf("error: %v", err)
	}
	if _, err := Import(nil, Options{}); err == nil {
		t.Error("no input, no error")
	}
}

// The policy each single-rule OUTPUT chain imports as: its rules, one per
// line, as "DIR DEST who=... except=... ACTION [log]", or "-" for none.
func TestRules(t *testing.T) {
	cases := []struct{ rules, want string }{
		{"-A OUTPUT -p tcp -m tcp --dport 1024: -m owner --uid-owner 1000-1999 -j ACCEPT", "to {tcp: \"1024-65535\"} who=uid:1000-1999 accept"},
		{"-A OUTPUT -p tcp -m tcp --dport 0:65535 -j DROP", "to {tcp: any} drop"},
		{"-A OUTPUT -p udp -m multiport --dports 53,5353,6000:6010 -j REJECT --reject-with icmp-port-unreachable", "to {udp: [53, 5353, \"6000-6010\"]} reject"},
		{"-A OUTPUT -d 10.0.0.0/255.0.0.0 -j DROP", "to {host: \"10.0.0.0/8\"} drop"},
		{"-A OUTPUT -d 10.1.2.3,10.1.2.4 -j DROP", "to {host: [\"10.1.2.3\", \"10.1.2.4\"]} drop"},
		{"-A OUTPUT -d 0.0.0.0/0 -p tcp --dport 80 -j DROP", "to {tcp: 80} drop"},
		{"-A OUTPUT -m owner --gid-owner wheel --suppl-groups -j ACCEPT", "to {} who=group:wheel accept"},
		{"-A OUTPUT -m owner --uid-owner alice -j ACCEPT", "to {} who=alice accept"},
		{"-A OUTPUT -m owner --uid-owner everyone -j ACCEPT", "to {} who=user:everyone accept"},
		{"-A OUTPUT -m owner --socket-exists --uid-owner 0 -j ACCEPT", "to {} who=uid:0 accept"},
		{"-A OUTPUT -m owner --uid-owner 4294967295 -j ACCEPT", "to {} who=uid:4294967294 accept"},
		{"-A OUTPUT -m owner ! --uid-owner 0 ! --gid-owner 10 --suppl-groups -j DROP", "to {} except=uid:0,gid:10 drop"},
		{"-A OUTPUT -m owner --uid-owner 0 -j RETURN", "to {} who=uid:0 accept"},
		{"-A OUTPUT -p tcp -m tcp --syn -m owner --uid-owner 7 -j DROP", "to {tcp: any} who=uid:7 drop"},
		{"-A OUTPUT -p tcp -m tcp --tcp-flags ALL SYN,ACK -m owner --uid-owner 7 -j DROP", "serve {tcp: any} who=uid:7 drop"},
		{"-A OUTPUT -p tcp -m tcp --sport 22 --tcp-flags SYN,ACK SYN,ACK -m owner ! --uid-owner 0 -j REJECT", "serve {tcp: 22} except=uid:0 reject"},
		{"-A OUTPUT -p tcp -m tcp --sport 22 --dport 22 -j REJECT", "-"},
		{"-A OUTPUT -p tcp -m tcp --sport 2000 --syn -j DROP", "-"},
		{"-A OUTPUT -p udp -m udp --sport 53 -m owner ! --uid-owner 53 -j DROP", "serve {udp: 53} except=uid:53 drop"},
		{"-A OUTPUT -4 -o lo -j DROP\n-A OUTPUT -6 -j DROP", "to {host: local} drop"},
		{"-A OUTPUT -m addrtype --dst-type LOCAL -d 127.0.0.1 -j DROP", "to {host: \"127.0.0.1\"} drop"},
		{"-A OUTPUT -m addrtype --dst-type LOCAL -d 10.0.0.0/8 -j DROP", "-"},
		{"-A OUTPUT -m conntrack --ctstate NEW -m owner --uid-owner 0 -j ACCEPT", "to {} who=uid:0 accept"},
		{"-A OUTPUT -m conntrack ! --ctstate INVALID -j ACCEPT", "to {} accept"},
		{"-A OUTPUT -m conntrack --ctstate ESTABLISHED -j DROP", "-"},
		{"-A OUTPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK -m state --state NEW -j DROP", "-"},
		{"-A OUTPUT -p tcp -m udp --dport 80 -j DROP", "-"},
		{"-A OUTPUT -p udp --dport 80 --tcp-flags SYN,ACK SYN -j DROP", "-"},
		{"-A OUTPUT -m owner --uid-owner 0 --uid-owner 1 -j DROP", "-"},
		{"-A OUTPUT -m owner --gid-owner 10-12 -j DROP", "-"},
		{"-A OUTPUT -m owner --gid-owner 10-10 -j DROP", "to {} who=gid:10 drop"},
		{"-A OUTPUT -p tcp -m tcp --dport ssh -j DROP", "-"},
		{"-A OUTPUT -m comment --comment \"say \\\"hi\\\" \\\\ there\" -j DROP", "to {} drop"},
		{"-A OUTPUT -m limit --limit 1/s -j DROP", "-"},
		{"-A OUTPUT -m owner --uid-owner 5 -j LOG\n-A OUTPUT -m owner --uid-owner 5 -j DROP", "to {} who=uid:5 drop log"},
		{"-A OUTPUT -m owner --uid-owner 5 -j LOG\n-A OUTPUT -m owner --uid-owner 6 -j DROP", "to {} who=uid:6 drop"},
		{"-A OUTPUT -j DROP\n-I OUTPUT 1 -o lo -j ACCEPT", "to {host: local} accept\nto {} drop"},
		{"-I OUTPUT -o lo -j ACCEPT\n-I OUTPUT -j DROP", "to {} drop\nto {host: local} accept"},
	}
	for _, c := range cases {
		t.Run(c.rules, func(t *testing.T) {
			res, p := importOne(t, head+c.rules+"\nCOMMIT\n", Options{})
			var got []string
			for _, r := range p.Rules {
				got = append(got, ruleSummary(t, res.Policy, r))
			}
			g := strings.Join(got, "\n")
			if g == "" {
				g = "-"
			}
			if g != c.want {
				t.Errorf("got\n%s\nwant\n%s\npolicy:\n%s\nwarnings: %v", g, c.want, res.Policy, res.Warnings)
			}
			if g == "-" && len(res.Warnings) == 0 {
				t.Errorf("nothing imported, and no warning")
			}
		})
	}
}

// ruleSummary is the rule as "DIR DEST [who=..] [except=..] ACTION [log]",
// DEST as written in the policy.
func ruleSummary(t *testing.T, text string, r *policy.Rule) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	dest := ""
	for i := r.Pos.Line - 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if v, ok := strings.CutPrefix(l, string(r.Dir)+": "); ok {
			dest = v
			break
		}
	}
	s := string(r.Dir) + " " + dest
	if !(len(r.Who) == 1 && r.Who[0].Kind == policy.KindEveryone) {
		s += " who=" + texts(r.Who)
	}
	if len(r.Except) > 0 {
		s += " except=" + texts(r.Except)
	}
	s += " " + string(r.Action)
	if r.Log {
		s += " log"
	}
	return s
}

func texts(ps []policy.Principal) string {
	t := make([]string, len(ps))
	for i, p := range ps {
		t[i] = p.Text
	}
	return strings.Join(t, ",")
}

func TestChains(t *testing.T) {
	cases := []struct{ rules, want string }{
		// ! --uid-owner 0 -j RETURN: the rest of the chain is root's.
		{":G - [0:0]\n-A OUTPUT -o lo -j G\n-A G -m owner ! --uid-owner 0 -j RETURN\n-A G -p tcp --dport 22 -j ACCEPT\n-A G -j DROP",
			"to {host: local, tcp: 22} who=uid:0 accept\nto {host: local} who=uid:0 drop"},
		// Conditional RETURN on a port: imported as if absent, with a warning.
		{":G - [0:0]\n-A OUTPUT -j G\n-A G -p tcp --dport 22 -j RETURN\n-A G -j DROP",
			"to {} drop"},
		// Jump conditions are conjoined.
		{":G - [0:0]\n-A OUTPUT -p tcp -m multiport --dports 80,443 -m owner ! --uid-owner 0 -j G\n-A G -p tcp --dport 443 -m owner --uid-owner 1000-1999 -j DROP\n-A G -p udp -j DROP",
			"to {tcp: 443} who=uid:1000-1999 except=uid:0 drop"},
		// Nested uid ranges intersect.
		{":G - [0:0]\n-A OUTPUT -m owner --uid-owner 1000-1999 -j G\n-A G -m owner --uid-owner 1500-2500 -j DROP\n-A G -m owner --uid-owner 3000 -j DROP",
			"to {} who=uid:1500-1999 drop"},
		// -g from OUTPUT: what the chain leaves undecided gets the policy.
		{":G - [0:0]\n-A OUTPUT -o lo -g G\n-A G -m owner --uid-owner 0 -j ACCEPT",
			"to {host: local} who=uid:0 accept\nto {host: local} accept"},
		// -g inside a user chain skips the rest of that chain.
		{":G - [0:0]\n:H - [0:0]\n-A OUTPUT -j G\n-A G -m owner --uid-owner 5 -g H\n-A G -j DROP\n-A H -p tcp --dport 80 -j ACCEPT",
			"to {tcp: 80} who=uid:5 accept\nto {} except=uid:5 drop"},
		// A loop is refused, not followed forever.
		{":G - [0:0]\n:H - [0:0]\n-A OUTPUT -j G\n-A G -j H\n-A H -j G\n-A H -j DROP",
			"to {} drop"},
		// ownerwall's own chains are not imported.
		{":OWNERWALL - [0:0]\n-A OUTPUT -j OWNERWALL\n-A OWNERWALL -j DROP", "-"},
	}
	for _, c := range cases {
		t.Run(c.rules, func(t *testing.T) {
			res, p := importOne(t, head+c.rules+"\nCOMMIT\n", Options{})
			var got []string
			for _, r := range p.Rules {
				got = append(got, ruleSummary(t, res.Policy, r))
			}
			g := strings.Join(got, "\n")
			if g == "" {
				g = "-"
			}
			if g != c.want {
				t.Errorf("got\n%s\nwant\n%s\npolicy:\n%s\nwarnings: %v", g, c.want, res.Policy, res.Warnings)
			}
		})
	}
}

func TestEstablishedAcceptBeforeServe(t *testing.T) {
	for _, c := range []struct {
		before string
		fires  bool
	}{
		{"-A OUTPUT -j ACCEPT", false},
		{"-A OUTPUT -p tcp -m conntrack --ctstate ESTABLISHED -j ACCEPT", false},
		{"-A OUTPUT -p udp -m conntrack --ctstate ESTABLISHED -j ACCEPT", true},
		{"-A OUTPUT -m conntrack --ctstate ESTABLISHED -m owner --uid-owner 5 -j ACCEPT", true},
		{"-A OUTPUT -m conntrack --ctstate RELATED -j ACCEPT", true},
		{"-A OUTPUT -m conntrack --ctstate ESTABLISHED -j DROP", true},
	} {
		res, _ := importOne(t, head+c.before+"\n-A OUTPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK -m owner ! --uid-owner 0 -j REJECT\nCOMMIT\n", Options{})
		warned := strings.Contains(warningsAt(res, 6), "never fires: line 5")
		if warned == c.fires {
			t.Errorf("%s: warned %v, want %v: %v", c.before, warned, !c.fires, res.Warnings)
		}
	}
}

func TestStateWarningOnAcceptOnly(t *testing.T) {
	res, _ := importOne(t, head+"-A OUTPUT -m state --state NEW,ESTABLISHED -j DROP\n-A OUTPUT -m conntrack --ctstate ESTABLISHED,NEW -j ACCEPT\nCOMMIT\n", Options{})
	if w := warningsAt(res, 5); strings.Contains(w, "restricts nothing") {
		t.Errorf("warned on a DROP: %s", w)
	}
	if w := warningsAt(res, 6); !strings.Contains(w, "--ctstate ESTABLISHED,NEW on an accept takes every new connection") {
		t.Errorf("line 6: %q", w)
	}
}

func TestFamilies(t *testing.T) {
	v6 := head + "-A OUTPUT -d ::1/128 -p tcp -m tcp --dport 992 -m owner ! --uid-owner 0 -j REJECT\nCOMMIT\n"
	v4 := head + "-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 992 -m owner ! --uid-owner 0 -j REJECT\nCOMMIT\n"
	// No header: the addresses tell; the IPv6 input may come first.
	res, err := Import([]Input{{Name: "a", Data: []byte(v6)}, {Name: "b", Data: []byte(v4)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Policy, `host: ["127.0.0.1", "::1"]`) || !strings.Contains(res.Policy, "v4 line 5, v6 line 5") {
		t.Errorf("not merged:\n%s", res.Policy)
	}
	// No addresses: the file name tells, else the first is IPv4.
	plain := head + "-A OUTPUT -p tcp -m tcp --dport 80 -m owner ! --uid-owner 0 -j DROP\nCOMMIT\n"
	for _, names := range [][2]string{{"rules.v6", "rules.v4"}, {"x", "y"}} {
		res, err = Import([]Input{{Name: names[0], Data: []byte(plain)}, {Name: names[1], Data: []byte(plain)}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Warnings) != 0 || strings.Count(res.Policy, "- name:") != 1 {
			t.Errorf("%v: %v\n%s", names, res.Warnings, res.Policy)
		}
	}
	// Two IPv4 rulesets are an error.
	_, err = Import([]Input{{Name: "a", Data: []byte(v4)}, {Name: "b", Data: []byte(v4)}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "b:1: a second IPv4 ruleset (the first is a:1)") {
		t.Errorf("error: %v", err)
	}
	// An address of the other family in a rule: not imported.
	res, err = Import([]Input{{Name: "a", Data: []byte("# Generated by iptables-save\n" + head + "-A OUTPUT -d ::1 -j DROP\nCOMMIT\n")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Msg, "an IPv6 address in the IPv4 ruleset") {
		t.Errorf("warnings: %v", res.Warnings)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"COMMIT\n", "t:1: COMMIT outside a table"},
		{"-A OUTPUT -j ACCEPT\n", "t:1: rule outside a table"},
		{"*filter\n:OUTPUT ACCEPT\n", "t:2: the input ends without the COMMIT of table filter (line 1)"},
		{"*filter\n:OUTPUT QUEUE [0:0]\nCOMMIT\n", `t:2: the policy of chain OUTPUT must be ACCEPT or DROP, not "QUEUE"`},
		{"*filter\n:X ACCEPT [0:0]\nCOMMIT\n", `t:2: user chain X cannot have a policy ("ACCEPT"): write :X - [0:0]`},
		{"*filter\n-A OUTPUT ! ! -j DROP\nCOMMIT\n", "t:2: a lone !: it goes before an option"},
		{"*filter\n-A OUTPUT -p tcp --tcp-flags SYN,BOGUS SYN -j DROP\nCOMMIT\n", `t:2: unknown TCP flag "BOGUS"`},
		{"*filter\n-A OUTPUT -m state --state NEWISH -j DROP\nCOMMIT\n", `t:2: unknown conntrack state "NEWISH"`},
		{"*filter\n-A OUTPUT -m owner --uid-owner 5-1 -j DROP\nCOMMIT\n", `t:2: --uid-owner "5-1": the range runs backwards`},
		{"*filter\n-A OUTPUT -p tcp --dport 1,2 -j DROP\nCOMMIT\n", `t:2: port "1,2": a list needs -m multiport`},
		{"*filter\n-I OUTPUT 3 -j DROP\nCOMMIT\n", "t:2: rule position 3: chain OUTPUT has 0 rules"},
		{"*filter\n[1:x] -A OUTPUT -j DROP\nCOMMIT\n", `t:2: bad counters "[1:x] -A OUTPUT -j DROP"`},
		{"*filter\n-A\nCOMMIT\n", "t:2: -A needs a chain name"},
		{"\x00\x01\x02\n", "t:1: binary data: not iptables-save output"},
		{"*filter\n*nat\nCOMMIT\n", "t:2: table filter (line 1) has no COMMIT before the next table"},
	}
	for _, c := range cases {
		_, err := Import([]Input{{Name: "t", Data: []byte(c.in)}}, Options{})
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q: no error, want %s", c.in, c.want)
			continue
		}
		checkErrors(t, err)
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.in, err, c.want)
		}
	}
	// Errors stop at maxErrors.
	_, err := Import([]Input{{Name: "t", Data: []byte(strings.Repeat("junk\n", 100))}}, Options{})
	if es, ok := err.(Errors); !ok || len(es) != maxErrors+1 {
		t.Errorf("%d errors", len(es))
	}
}

func TestTooLarge(t *testing.T) {
	// 24 chains, each jumping twice to the next: 2^24 rule visits.
	var b strings.Builder
	b.WriteString(head)
	for i := 0; i < 24; i++ {
		fmt.Fprintf(&b, ":C%d - [0:0]\n", i)
	}
	b.WriteString("-A OUTPUT -j C0\n")
	for i := 0; i < 23; i++ {
		fmt.Fprintf(&b, "-A C%d -j C%d\n-A C%d -j C%d\n", i, i+1, i, i+1)
	}
	b.WriteString("-A C23 -j DROP\nCOMMIT\n")
	_, err := Import([]Input{{Name: "t", Data: []byte(b.String())}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "too large to import") {
		t.Errorf("error: %v", err)
	}
}

func TestTokenize(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{`-A OUTPUT -j ACCEPT`, []string{"-A", "OUTPUT", "-j", "ACCEPT"}},
		{"a \t b", []string{"a", "b"}},
		{`--comment "a b" x`, []string{"--comment", "a b", "x"}},
		{`--comment "say \"hi\" \\ now"`, []string{"--comment", `say "hi" \ now`}},
		{`--comment 'it''s'`, []string{"--comment", "its"}},
		{`--comment ""`, []string{"--comment", ""}},
		{`a\ b`, []string{"a b"}},
	}
	for _, c := range cases {
		got, err := tokenize(c.in)
		if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
			t.Errorf("tokenize(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := tokenize(`"open`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestNames(t *testing.T) {
	long := "-A OUTPUT -m comment --comment \"" + strings.Repeat("é", 150) + "\" -j DROP"
	_, p := importOne(t, head+long+"\nCOMMIT\n", Options{})
	if n := p.Rules[0].Name; len(n) > maxNameLen || !strings.HasSuffix(n, " ...") {
		t.Errorf("name %q (%d bytes)", n, len(n))
	}
	_, p = importOne(t, head+"-A OUTPUT -m comment --comment \"tab\there \\\"q\\\" back\\\\slash\" -j DROP\nCOMMIT\n", Options{})
	if n := p.Rules[0].Name; n != "tab here 'q' back/slash" {
		t.Errorf("name %q", n)
	}
	_, p = importOne(t, head+"-A OUTPUT -m comment --comment \"   \" -j DROP\nCOMMIT\n", Options{})
	if n := p.Rules[0].Name; n != "line 5: -A OUTPUT -m comment --comment \" \" -j DROP" && !strings.HasPrefix(n, "line 5: ") {
		t.Errorf("name %q", n)
	}
}
