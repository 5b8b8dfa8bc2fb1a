package compile

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ir"
)

func TestUnresolvableReferences(t *testing.T) {
	_, env := testEnv(t)
	ps := compileProblems(t, env, `version: 1
rules:
  - to: {host: [local, nowhere.example], tcp: 80}
    who: [alice, zed, "group:wheel"]
    except: ["group:nogrp", "unit:missing.service"]
    action: drop
  - to:
      host: empty.example
    who: ["user:zed", "unit:stunnel.service"]
    action: drop
`)
	want := []string{
		`test.yaml:3:24: host "nowhere.example" does not resolve`,
		`test.yaml:4:18: user "zed" does not resolve`,
		`test.yaml:5:14: group "nogrp" does not resolve`,
		`test.yaml:5:29: unit "missing.service" does not resolve`,
		`test.yaml:8:13: host "empty.example" does not resolve`,
		`test.yaml:9:11: user "zed" does not resolve`,
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	if !eq(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCompileProblemsSorted: like Parse, compile reports problems in file
// order, even when a rule names its principals above its destination.
func TestCompileProblemsSorted(t *testing.T) {
	_, env := testEnv(t)
	ps := compileProblems(t, env, `version: 1
rules:
  - who: [zed]
    to: {host: nowhere.example}
    action: drop
`)
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	want := []string{
		`test.yaml:3:11: user "zed" does not resolve`,
		`test.yaml:4:16: host "nowhere.example" does not resolve`,
	}
	if !eq(got, want) {
		fixedBug(t, "compile reports problems in resolution order (destination first), not sorted by line as Parse does: "+strings.Join(got, " | "))
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestUnitsWithoutSystemd(t *testing.T) {
	_, env := testEnv(t)
	env.Units = nil
	ps := compileProblems(t, env, "version: 1\nrules:\n  - to: {tcp: 80}\n    who: [\"unit:stunnel\"]\n    action: drop\n")
	if len(ps) != 1 || ps[0].Error() != `test.yaml:4:11: unit "stunnel.service": no systemd to ask` {
		t.Errorf("problems = %v", ps)
	}
}

func TestHostsResolve(t *testing.T) {
	_, env := testEnv(t)
	rs := compileOK(t, env, `version: 1
rules:
  - to:
      host: [db.example, 10.0.0.0/8, 10.1.2.3, "2001:db8::/32", "2001:db8::10", 192.0.2.10, local, v4only.example]
      tcp: 5432
    action: reject
  - to:
      host: [192.0.2.1, "::1"]
    action: drop
`)
	m := rs.Rules[0].Match
	pfx := netip.MustParsePrefix
	wantNets := []netip.Prefix{
		pfx("10.0.0.0/8"), // 10.1.2.3 is inside: dropped
		pfx("192.0.2.10/32"),
		pfx("192.0.2.11/32"), // ::ffff:192.0.2.11 from db.example, unmapped
		pfx("198.51.100.7/32"),
		pfx("2001:db8::/32"), // 2001:db8::10 is inside
	}
	if !eq(m.Nets, wantNets) {
		t.Errorf("Nets = %v, want %v", m.Nets, wantNets)
	}
	wantNames := []ir.ResolvedName{
		{Name: "db.example", Addrs: []netip.Addr{
			netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("::ffff:192.0.2.11"),
		}},
		{Name: "v4only.example", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.7")}},
	}
	if !eq(m.Names, wantNames) {
		t.Errorf("Names = %v, want %v", m.Names, wantNames)
	}
	if !m.Local || m.AnyHost || m.AllProtocols || !eq(m.TCP, &ir.Ports{Ranges: []ir.PortRange{{Lo: 5432, Hi: 5432}}}) {
		t.Errorf("match = %+v", m)
	}
	m = rs.Rules[1].Match
	if !eq(m.Nets, []netip.Prefix{pfx("192.0.2.1/32"), pfx("::1/128")}) || m.Local || m.AnyHost || !m.AllProtocols || m.TCP != nil || m.UDP != nil {
		t.Errorf("rule 2 match = %+v", m)
	}
}

func TestHostnameAllRecords(t *testing.T) {
	st, env := testEnv(t)
	st.HostAddrs["mirror.example"] = []netip.Addr{
		netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.8"),
		netip.MustParseAddr("2001:db8:1::9"), netip.MustParseAddr("2001:db8:1::8"), netip.MustParseAddr("203.0.113.9"),
	}
	rs := compileOK(t, env, "version: 1\nrules:\n  - to: {host: Mirror.Example, udp: 123}\n    action: accept\n")
	want := []netip.Prefix{
		netip.MustParsePrefix("203.0.113.8/32"), netip.MustParsePrefix("203.0.113.9/32"),
		netip.MustParsePrefix("2001:db8:1::8/128"), netip.MustParsePrefix("2001:db8:1::9/128"),
	}
	if got := rs.Rules[0].Match.Nets; !eq(got, want) {
		t.Errorf("Nets = %v, want every A and AAAA record once: %v", got, want)
	}
}

func TestServeMatchesAnyHost(t *testing.T) {
	_, env := testEnv(t)
	rs := compileOK(t, env, "version: 1\nservices:\n  ssh: {host: local, tcp: 22}\nrules:\n  - serve: ssh\n    action: reject\n")
	m := rs.Rules[0].Match
	if !m.AnyHost || m.Local || len(m.Nets) != 0 || !eq(m.TCP, &ir.Ports{Ranges: []ir.PortRange{{Lo: 22, Hi: 22}}}) {
		t.Errorf("serve match = %+v: serve rules match local ports, any address", m)
	}
}

func TestUnitDispatch(t *testing.T) {
	_, env := testEnv(t)
	rs := compileOK(t, env, `version: 1
rules:
  - name: stunnel may reach the tunnel
    to: {host: local, tcp: 992}
    who: ["unit:stunnel.service"]
    action: accept
  - to: {host: local, tcp: 992}
    except: [root]
    action: reject
  - to: {tcp: 80}
    who: ["unit:web", "unit:app.service"]
    except: [alice]
    action: drop
  - to: {tcp: 443}
    who: [alice]
    except: ["unit:agent.service"]
    action: drop
`)
	type disp struct {
		unit, cgroup string
		level        int
	}
	var got []disp
	for _, d := range rs.Dispatch {
		got = append(got, disp{d.Unit, d.Cgroup, d.Level})
	}
	// deepest cgroup first; same depth by path; the default last.
	want := []disp{
		{"agent.service", "system.slice/stunnel.service/agent.service", 3},
		{"app.service", "user.slice/user-1000.slice/app.service", 3},
		{"stunnel.service", "system.slice/stunnel.service", 2},
		{"web.service", "system.slice/web.service", 2},
		{"", "", 0},
	}
	if len(got) != len(want) {
		t.Fatalf("dispatch = %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("dispatch %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	byUnit := map[string]*ir.Dispatch{}
	for i := range rs.Dispatch {
		byUnit[rs.Dispatch[i].Cgroup] = &rs.Dispatch[i]
	}
	cases := []struct {
		cgroup string
		uid    uint32
		want   []int
	}{
		{"", 0, nil},
		{"", 1000, []int{2, 4}},
		{"", 1001, []int{2}},
		{"system.slice/stunnel.service", 0, []int{1}},                     // any uid in the unit
		{"system.slice/stunnel.service", 1000, []int{1, 2, 4}},            // alice in stunnel
		{"system.slice/stunnel.service/agent.service", 1000, []int{1, 2}}, // below stunnel, excepted from 4
		{"system.slice/stunnel.service/agent.service", 0, []int{1}},
		{"system.slice/web.service", 1000, []int{2, 4}}, // alice is excepted from 3
		{"system.slice/web.service", 1001, []int{2, 3}},
		{"user.slice/user-1000.slice/app.service", 4242, []int{2, 3}},
	}
	for _, c := range cases {
		d := byUnit[c.cgroup]
		if d == nil {
			t.Fatalf("no dispatch for cgroup %q", c.cgroup)
		}
		if got := rulesIn(rs, d, c.uid); !eq(got, c.want) {
			t.Errorf("cgroup %q uid %d: rules %v, want %v", c.cgroup, c.uid, got, c.want)
		}
	}
	// the unit principal carries its cgroup, without slashes around it.
	if p := rs.Rules[2].Who[0]; p.Kind != "unit" || p.Cgroup != "system.slice/web.service" || p.UIDs != nil {
		t.Errorf("unit principal = %+v", p)
	}
}

func TestNoUnitsNoUnitDispatch(t *testing.T) {
	_, env := testEnv(t)
	rs := compileOK(t, env, "version: 1\nrules:\n  - to: {tcp: 80}\n    action: drop\n")
	if len(rs.Dispatch) != 1 || rs.Dispatch[0].Unit != "" || rs.Dispatch[0].Level != 0 {
		t.Errorf("dispatch = %+v, want only the default", rs.Dispatch)
	}
}
