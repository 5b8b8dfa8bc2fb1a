package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// mustParse parses src and fails the test on any problem.
func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: unexpected problems:\n%v", err)
	}
	if p == nil {
		t.Fatal("Parse returned a nil policy and no error")
	}
	return p
}

func ranges(rs ...PortRange) []PortRange { return rs }

func TestParseSpecExample(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "spec-example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("policy.yaml", src)
	if err != nil {
		t.Fatalf("the spec's example policy must parse:\n%v", err)
	}
	if p.File != "policy.yaml" || p.Version != 1 || p.Outbound != Accept {
		t.Errorf("File, Version, Outbound = %q, %d, %q; want policy.yaml, 1, accept", p.File, p.Version, p.Outbound)
	}
	if p.OutboundPos != (Pos{Line: 5, Col: 11}) {
		t.Errorf("OutboundPos = %+v, want 5:11", p.OutboundPos)
	}
	if len(p.Services) != 2 {
		t.Fatalf("got %d services, want 2", len(p.Services))
	}
	for name, port := range map[string]uint16{"telnet-tunnel": 992, "rsync-tunnel": 273} {
		d := p.Services[name]
		if d == nil {
			t.Fatalf("service %q missing", name)
		}
		if len(d.Hosts) != 1 || d.Hosts[0].Kind != HostLocal {
			t.Errorf("service %q hosts = %+v, want [local]", name, d.Hosts)
		}
		if !d.TCP.Given || d.TCP.Any || !reflect.DeepEqual(d.TCP.Ranges, ranges(PortRange{port, port})) {
			t.Errorf("service %q tcp = %+v, want %d", name, d.TCP, port)
		}
		if d.UDP.Given {
			t.Errorf("service %q: udp given", name)
		}
	}

	type wantRule struct {
		name    string
		line    int
		dir     Direction
		service string
		except  []string
		action  Action
	}
	want := []wantRule{
		{"telnet tunnel is root's", 13, To, "telnet-tunnel", []string{"root"}, Reject},
		{"rsync tunnel is for wheel", 18, To, "rsync-tunnel", []string{"group:wheel"}, Reject},
		{"no web for ordinary users", 23, To, "", []string{"root"}, Drop},
		{"only root and wheel accept inbound TCP", 28, Serve, "", []string{"root", "group:wheel"}, Reject},
	}
	if len(p.Rules) != len(want) {
		t.Fatalf("got %d rules, want %d", len(p.Rules), len(want))
	}
	for i, w := range want {
		r := p.Rules[i]
		if r.Index != i+1 || r.Name != w.name || r.Dir != w.dir || r.Service != w.service || r.Action != w.action || r.Log {
			t.Errorf("rule %d = {Index %d, Name %q, Dir %s, Service %q, Action %s, Log %v}; want {%d, %q, %s, %q, %s, false}",
				i+1, r.Index, r.Name, r.Dir, r.Service, r.Action, r.Log, i+1, w.name, w.dir, w.service, w.action)
		}
		if r.Pos != (Pos{Line: w.line, Col: 5}) {
			t.Errorf("rule %d at %d:%d, want %d:5, its first key", i+1, r.Pos.Line, r.Pos.Col, w.line)
		}
		if len(r.Who) != 1 || r.Who[0].Kind != KindEveryone {
			t.Errorf("rule %d who = %+v, want the everyone default", i+1, r.Who)
		}
		var except []string
		for _, e := range r.Except {
			except = append(except, e.Text)
		}
		if !reflect.DeepEqual(except, w.except) {
			t.Errorf("rule %d except = %q, want %q", i+1, except, w.except)
		}
		if r.Dest == nil {
			t.Fatalf("rule %d has no destination", i+1)
		}
		if w.service != "" && r.Dest != p.Services[w.service] {
			t.Errorf("rule %d: Dest is not the service %q's destination", i+1, w.service)
		}
	}
	if d := p.Rules[2].Dest; len(d.Hosts) != 0 || !reflect.DeepEqual(d.TCP.Ranges, ranges(PortRange{80, 80}, PortRange{443, 443})) || d.UDP.Given {
		t.Errorf("rule 3 destination = %+v, want any host, tcp 80 and 443", d)
	}
	if d := p.Rules[3].Dest; !d.TCP.Any || d.UDP.Given || len(d.Hosts) != 0 {
		t.Errorf("rule 4 serve = %+v, want tcp any", d)
	}
	if e := p.Rules[3].Except[1]; e.Kind != KindGroup || e.Name != "wheel" || e.Pos != (Pos{Line: 30, Col: 20}) {
		t.Errorf("rule 4 second except = %+v, want group wheel at 30:20", e)
	}
}

func TestParsePrincipalForms(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - to: {tcp: 80}
    who:
      - alice
      - user:bob
      - uid:1000
      - uid:1000-1999
      - group:wheel
      - gid:10
      - unit:stunnel.service
      - unit:sshd
      - everyone
      - "  carol  "
      - ad.user@EXAMPLE.COM
    action: drop
`)
	want := []Principal{
		{Kind: KindUser, Name: "alice", Text: "alice", Pos: Pos{5, 9}},
		{Kind: KindUser, Name: "bob", Text: "user:bob", Pos: Pos{6, 9}},
		{Kind: KindUID, Lo: 1000, Hi: 1000, Text: "uid:1000", Pos: Pos{7, 9}},
		{Kind: KindUID, Lo: 1000, Hi: 1999, Text: "uid:1000-1999", Pos: Pos{8, 9}},
		{Kind: KindGroup, Name: "wheel", Text: "group:wheel", Pos: Pos{9, 9}},
		{Kind: KindGID, Lo: 10, Hi: 10, Text: "gid:10", Pos: Pos{10, 9}},
		{Kind: KindUnit, Name: "stunnel.service", Text: "unit:stunnel.service", Pos: Pos{11, 9}},
		{Kind: KindUnit, Name: "sshd.service", Text: "unit:sshd", Pos: Pos{12, 9}},
		{Kind: KindEveryone, Text: "everyone", Pos: Pos{13, 9}},
		{Kind: KindUser, Name: "carol", Text: "carol", Pos: Pos{14, 9}},
		{Kind: KindUser, Name: "ad.user@EXAMPLE.COM", Text: "ad.user@EXAMPLE.COM", Pos: Pos{15, 9}},
	}
	got := p.Rules[0].Who
	if len(got) != len(want) {
		t.Fatalf("got %d principals, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("principal %d = %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func TestParsePrincipal(t *testing.T) {
	valid := []struct {
		in   string
		want Principal
	}{
		{"uid:0", Principal{Kind: KindUID, Text: "uid:0"}},
		{"uid:4294967294", Principal{Kind: KindUID, Lo: MaxID, Hi: MaxID, Text: "uid:4294967294"}},
		{"uid:0-4294967294", Principal{Kind: KindUID, Lo: 0, Hi: MaxID, Text: "uid:0-4294967294"}},
		{"uid:5-5", Principal{Kind: KindUID, Lo: 5, Hi: 5, Text: "uid:5-5"}},
		{`DOMAIN\user`, Principal{Kind: KindUser, Name: `DOMAIN\user`, Text: `DOMAIN\user`}},
		{"unit:user@1000.service", Principal{Kind: KindUnit, Name: "user@1000.service", Text: "unit:user@1000.service"}},
		{"unit:app.slice", Principal{Kind: KindUnit, Name: "app.slice", Text: "unit:app.slice"}},
	}
	for _, c := range valid {
		got, err := ParsePrincipal(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePrincipal(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	invalid := []string{
		"", "1000", "uid:", "uid:x", "uid:-5", "uid:5-", "uid:2000-1000", "uid:4294967295", "uid:99999999999",
		"gid:10-20", "gid:", "group:", "user:", "unit:", "unit:a/b.service", "user:a b", "user:a,b", "role:admin",
		"user:x:y",
	}
	for _, in := range invalid {
		if got, err := ParsePrincipal(in); err == nil {
			t.Errorf("ParsePrincipal(%q) = %+v, want an error", in, got)
		}
	}
}

func TestParseHostForms(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - to:
      host:
        - local
        - 192.0.2.1
        - 2001:db8::1
        - "::1"
        - 10.0.0.0/8
        - 10.1.2.3/8
        - 2001:db8::/32
        - "::ffff:127.0.0.1"
        - "::ffff:10.0.0.0/104"
        - Example.COM.
        - db_1.internal
    action: drop
`)
	pfx := netip.MustParsePrefix
	want := []Host{
		{Kind: HostLocal, Pos: Pos{5, 11}},
		{Kind: HostPrefix, Prefix: pfx("192.0.2.1/32"), Pos: Pos{6, 11}},
		{Kind: HostPrefix, Prefix: pfx("2001:db8::1/128"), Pos: Pos{7, 11}},
		{Kind: HostPrefix, Prefix: pfx("::1/128"), Pos: Pos{8, 11}},
		{Kind: HostPrefix, Prefix: pfx("10.0.0.0/8"), Pos: Pos{9, 11}},
		{Kind: HostPrefix, Prefix: pfx("10.0.0.0/8"), Pos: Pos{10, 11}}, // masked
		{Kind: HostPrefix, Prefix: pfx("2001:db8::/32"), Pos: Pos{11, 11}},
		{Kind: HostPrefix, Prefix: pfx("127.0.0.1/32"), Pos: Pos{12, 11}}, // IPv4-mapped: stored as IPv4
		{Kind: HostPrefix, Prefix: pfx("10.0.0.0/8"), Pos: Pos{13, 11}},
		{Kind: HostName, Name: "example.com", Pos: Pos{14, 11}},
		{Kind: HostName, Name: "db_1.internal", Pos: Pos{15, 11}},
	}
	got := p.Rules[0].Dest.Hosts
	if len(got) != len(want) {
		t.Fatalf("got %d hosts, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("host %d = %+v\n want %+v", i, got[i], want[i])
		}
	}
	if !got[7].Prefix.Addr().Is4() {
		t.Errorf("::ffff:127.0.0.1 must be stored as an IPv4 address, got %v", got[7].Prefix)
	}
}

func TestParseHost(t *testing.T) {
	valid := map[string]Host{
		"any":            {Kind: HostAny},
		" local ":        {Kind: HostLocal},
		"0.0.0.0/0":      {Kind: HostPrefix, Prefix: netip.MustParsePrefix("0.0.0.0/0")},
		"::/0":           {Kind: HostPrefix, Prefix: netip.MustParsePrefix("::/0")},
		"localhost":      {Kind: HostName, Name: "localhost"},
		"a-b.c":          {Kind: HostName, Name: "a-b.c"},
		"::ffff:1.2.3.4": {Kind: HostPrefix, Prefix: netip.MustParsePrefix("1.2.3.4/32")},
	}
	for in, want := range valid {
		if got, msg := ParseHost(in); msg != "" || got != want {
			t.Errorf("ParseHost(%q) = %+v, %q; want %+v", in, got, msg, want)
		}
	}
	for _, in := range []string{"", "300.1.1.1", "1.2.3", "10.0.0.0/33", "fe80::1%eth0", "fe80::%eth0/64", "-bad.example", "bad-.example", "a..b", "a b", "x/y", "*.example.com"} {
		if got, msg := ParseHost(in); msg == "" {
			t.Errorf("ParseHost(%q) = %+v, want a problem", in, got)
		}
	}
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name  string
		src   string
		check func(t *testing.T, p *Policy)
	}{
		{"minimal: outbound defaults to accept, no rules", "version: 1\n", func(t *testing.T, p *Policy) {
			if p.Outbound != Accept || p.OutboundPos != (Pos{}) || len(p.Rules) != 0 || len(p.Services) != 0 {
				t.Errorf("got %+v, want outbound accept and nothing else", p)
			}
		}},
		{"outbound drop", "version: 1\noutbound: drop\n", func(t *testing.T, p *Policy) {
			if p.Outbound != Drop || p.OutboundPos != (Pos{2, 11}) {
				t.Errorf("outbound = %q at %+v, want drop at 2:11", p.Outbound, p.OutboundPos)
			}
		}},
		{"outbound reject", "version: 1\noutbound: reject\nrules: []\n", func(t *testing.T, p *Policy) {
			if p.Outbound != Reject {
				t.Errorf("outbound = %q, want reject", p.Outbound)
			}
		}},
		{"ports: single, range, list, any", `version: 1
rules:
  - to: {tcp: 22}
    action: drop
  - to: {tcp: "6000-6010"}
    action: drop
  - to: {tcp: [22, "6000-6010", 8080, 65535, 1]}
    action: drop
  - to: {udp: any}
    action: drop
  - to: {tcp: 6000-6010}
    action: drop
`, func(t *testing.T, p *Policy) {
			want := []Ports{
				{Given: true, Ranges: ranges(PortRange{22, 22}), Pos: Pos{3, 15}},
				{Given: true, Ranges: ranges(PortRange{6000, 6010}), Pos: Pos{5, 15}},
				{Given: true, Ranges: ranges(PortRange{22, 22}, PortRange{6000, 6010}, PortRange{8080, 8080}, PortRange{65535, 65535}, PortRange{1, 1}), Pos: Pos{7, 15}},
				{}, // udp: checked below
				{Given: true, Ranges: ranges(PortRange{6000, 6010}), Pos: Pos{11, 15}},
			}
			for i, w := range want {
				if i == 3 {
					continue
				}
				if got := p.Rules[i].Dest.TCP; !reflect.DeepEqual(got, w) {
					t.Errorf("rule %d tcp = %+v, want %+v", i+1, got, w)
				}
				if p.Rules[i].Dest.UDP.Given {
					t.Errorf("rule %d: udp given", i+1)
				}
			}
			d := p.Rules[3].Dest
			if !d.UDP.Given || !d.UDP.Any || len(d.UDP.Ranges) != 0 || d.TCP.Given || d.AllProtocols() {
				t.Errorf("rule 4 = %+v, want udp any only", d)
			}
		}},
		{"tcp and udp together", "version: 1\nrules:\n  - to: {host: 192.0.2.53, tcp: 53, udp: [53, 5353]}\n    action: accept\n", func(t *testing.T, p *Policy) {
			d := p.Rules[0].Dest
			if d.AllProtocols() || !reflect.DeepEqual(d.TCP.Ranges, ranges(PortRange{53, 53})) ||
				!reflect.DeepEqual(d.UDP.Ranges, ranges(PortRange{53, 53}, PortRange{5353, 5353})) {
				t.Errorf("dest = %+v, want tcp 53 and udp 53, 5353", d)
			}
			if len(d.Hosts) != 1 || d.Hosts[0].Prefix != netip.MustParsePrefix("192.0.2.53/32") {
				t.Errorf("hosts = %+v", d.Hosts)
			}
		}},
		{"no tcp or udp: every protocol", "version: 1\nrules:\n  - to: {host: local}\n    action: reject\n", func(t *testing.T, p *Policy) {
			if d := p.Rules[0].Dest; !d.AllProtocols() || d.TCP.Given || d.UDP.Given {
				t.Errorf("dest = %+v, want every protocol", d)
			}
		}},
		{"host any and host omitted both mean any host", "version: 1\nrules:\n  - to: {host: any, tcp: 1}\n    action: drop\n  - to: {tcp: 1}\n    action: drop\n", func(t *testing.T, p *Policy) {
			for i, r := range p.Rules {
				if len(r.Dest.Hosts) != 0 {
					t.Errorf("rule %d hosts = %+v, want none (any)", i+1, r.Dest.Hosts)
				}
			}
		}},
		{"single host scalar", "version: 1\nrules:\n  - to: {host: 2001:db8::5, tcp: 1}\n    action: drop\n", func(t *testing.T, p *Policy) {
			if h := p.Rules[0].Dest.Hosts; len(h) != 1 || h[0].Prefix != netip.MustParsePrefix("2001:db8::5/128") || h[0].Pos != (Pos{3, 16}) {
				t.Errorf("hosts = %+v", h)
			}
		}},
		{"service reference in to and serve", `version: 1
services:
  dns: {udp: 53}
  ssh: {host: local, tcp: 22}
rules:
  - to: ssh
    action: accept
  - serve: dns
    who: [uid:53]
    action: accept
  - serve: ssh
    action: reject
`, func(t *testing.T, p *Policy) {
			want := []struct {
				dir     Direction
				service string
			}{{To, "ssh"}, {Serve, "dns"}, {Serve, "ssh"}}
			for i, w := range want {
				r := p.Rules[i]
				if r.Dir != w.dir || r.Service != w.service || r.Dest != p.Services[w.service] {
					t.Errorf("rule %d = %s %q (dest %p), want %s %q (dest %p)", i+1, r.Dir, r.Service, r.Dest, w.dir, w.service, p.Services[w.service])
				}
			}
		}},
		{"inline serve", "version: 1\nrules:\n  - serve: {tcp: [22, 80], udp: 53}\n    action: drop\n", func(t *testing.T, p *Policy) {
			r := p.Rules[0]
			if r.Dir != Serve || r.Service != "" || !reflect.DeepEqual(r.Dest.TCP.Ranges, ranges(PortRange{22, 22}, PortRange{80, 80})) || !reflect.DeepEqual(r.Dest.UDP.Ranges, ranges(PortRange{53, 53})) {
				t.Errorf("rule = %+v, dest %+v", r, r.Dest)
			}
		}},
		{"log true and false", "version: 1\nrules:\n  - to: {tcp: 1}\n    action: drop\n    log: true\n  - to: {tcp: 2}\n    action: drop\n    log: false\n  - to: {tcp: 3}\n    action: drop\n", func(t *testing.T, p *Policy) {
			if !p.Rules[0].Log || p.Rules[1].Log || p.Rules[2].Log {
				t.Errorf("log = %v %v %v, want true false false", p.Rules[0].Log, p.Rules[1].Log, p.Rules[2].Log)
			}
		}},
		{"default name is rule N", "version: 1\nrules:\n  - name: first\n    to: {tcp: 1}\n    action: drop\n  - to: {tcp: 2}\n    action: drop\n  - to: {tcp: 3}\n    action: accept\n", func(t *testing.T, p *Policy) {
			for i, want := range []string{"first", "rule 2", "rule 3"} {
				if p.Rules[i].Name != want || p.Rules[i].Index != i+1 {
					t.Errorf("rule %d: name %q index %d, want %q %d", i+1, p.Rules[i].Name, p.Rules[i].Index, want, i+1)
				}
			}
		}},
		{"default who is everyone", "version: 1\nrules:\n  - to: {tcp: 1}\n    except: [root]\n    action: drop\n", func(t *testing.T, p *Policy) {
			r := p.Rules[0]
			if len(r.Who) != 1 || r.Who[0].Kind != KindEveryone || r.Who[0].Text != "everyone" {
				t.Errorf("who = %+v, want [everyone]", r.Who)
			}
			if len(r.Except) != 1 || r.Except[0].Name != "root" {
				t.Errorf("except = %+v, want [root]", r.Except)
			}
		}},
		{"who as a single scalar", "version: 1\nrules:\n  - to: {tcp: 1}\n    who: group:wheel\n    action: drop\n", func(t *testing.T, p *Policy) {
			if w := p.Rules[0].Who; len(w) != 1 || w[0].Kind != KindGroup || w[0].Name != "wheel" || w[0].Pos != (Pos{4, 10}) {
				t.Errorf("who = %+v", w)
			}
		}},
		{"empty except is allowed", "version: 1\nrules:\n  - to: {tcp: 1}\n    except: []\n    action: drop\n", func(t *testing.T, p *Policy) {
			if len(p.Rules[0].Except) != 0 {
				t.Errorf("except = %+v", p.Rules[0].Except)
			}
		}},
		{"keys in any order, services after rules", "rules:\n  - action: drop\n    to: web\nservices:\n  web: {tcp: 80}\noutbound: reject\nversion: 1\n", func(t *testing.T, p *Policy) {
			if p.Outbound != Reject || len(p.Rules) != 1 || p.Rules[0].Service != "web" {
				t.Errorf("got %+v", p)
			}
		}},
		{"anchors without aliases are harmless", "version: 1\nservices:\n  web: &w {tcp: 80}\n", func(t *testing.T, p *Policy) {
			if d := p.Services["web"]; d == nil || !reflect.DeepEqual(d.TCP.Ranges, ranges(PortRange{80, 80})) {
				t.Errorf("web = %+v", d)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, mustParse(t, c.src))
		})
	}
}
