package compile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// The test world. alice and bob have users (100) as their primary group,
// dave is in it as a supplementary member, and alice is listed there too
// (she counts once, as primary). wheel lists root, carol and ghost, who has
// no account. frank's primary gid 200 has no group entry.
const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
alice:x:1000:100::/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
carol:x:1002:1002::/home/carol:/bin/sh
dave:x:1003:1003::/home/dave:/bin/sh
erin:x:1500:1500::/home/erin:/bin/sh
frank:x:2000:200::/home/frank:/bin/sh
nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin
`
	testGroup = `root:x:0:
wheel:x:10:root,carol,ghost
users:x:100:dave,alice
carol:x:1002:
dave:x:1003:
erin:x:1500:
staff:x:50:
nogroup:x:65534:
`
)

func testEnv(t *testing.T) (*ident.Static, Env) {
	t.Helper()
	st, err := ident.NewStatic(testPasswd, testGroup)
	if err != nil {
		t.Fatal(err)
	}
	st.HostAddrs = map[string][]netip.Addr{
		"db.example": {
			netip.MustParseAddr("2001:db8::10"),
			netip.MustParseAddr("192.0.2.10"),
			netip.MustParseAddr("::ffff:192.0.2.11"),
		},
		"v4only.example": {netip.MustParseAddr("198.51.100.7")},
		"empty.example":  {},
	}
	st.UnitPaths = map[string]string{
		"stunnel.service": "system.slice/stunnel.service",
		"web.service":     "/system.slice/web.service/",
		"app.service":     "user.slice/user-1000.slice/app.service",
		"agent.service":   "system.slice/stunnel.service/agent.service",
	}
	return st, Env{Dir: st, Units: st, Hosts: st}
}

func parse(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	return p
}

// compileOK parses and compiles src in env, failing on any problem.
func compileOK(t *testing.T, env Env, src string) *ir.Ruleset {
	t.Helper()
	rs, err := Compile(context.Background(), parse(t, src), env)
	if err != nil {
		t.Fatalf("compile:\n%v", err)
	}
	checkInvariants(t, rs)
	return rs
}

// compileProblems compiles src and returns the problems it must give.
func compileProblems(t *testing.T, env Env, src string) policy.Problems {
	t.Helper()
	rs, err := Compile(context.Background(), parse(t, src), env)
	if err == nil {
		t.Fatalf("compile succeeded, want problems: %+v", rs)
	}
	if rs != nil {
		t.Errorf("compile returned a ruleset along with problems")
	}
	var ps policy.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want policy.Problems: %v", err, err)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "test.yaml:") {
			t.Errorf("problem %q does not start with the file name", line)
		}
	}
	return ps
}

// checkInvariants checks what every dispatch must be: uid maps that cover
// the whole uid space in order, profile ids that exist, the default last.
func checkInvariants(t *testing.T, rs *ir.Ruleset) {
	t.Helper()
	if len(rs.Dispatch) == 0 || rs.Dispatch[len(rs.Dispatch)-1].Unit != "" {
		t.Fatalf("the default dispatch must come last: %+v", rs.Dispatch)
	}
	next := 0
	for bi, b := range rs.Blocks {
		for _, ri := range b.Rules {
			if ri != next {
				t.Fatalf("block %d %v: rules do not follow each other from %d", bi, b.Rules, next)
			}
			next++
		}
	}
	if next != len(rs.Rules) {
		t.Fatalf("blocks cover %d of %d rules", next, len(rs.Rules))
	}
	for i, p := range rs.Profiles {
		if p.ID != i || len(p.Blocks) == 0 {
			t.Errorf("profile %d malformed: %+v", i, p)
		}
		for j, b := range p.Blocks {
			if b < 0 || b >= len(rs.Blocks) || (j > 0 && p.Blocks[j-1] >= b) {
				t.Errorf("profile %d blocks not ascending block indices: %v", i, p.Blocks)
			}
		}
	}
	for _, d := range rs.Dispatch {
		next := uint64(0)
		for k, u := range d.UIDs {
			if uint64(u.Lo) != next || u.Hi < u.Lo {
				t.Fatalf("dispatch %q: range %d %+v does not follow %d", d.Unit, k, u, next)
			}
			if u.Profile < -1 || u.Profile >= len(rs.Profiles) {
				t.Errorf("dispatch %q: profile %d does not exist", d.Unit, u.Profile)
			}
			if k > 0 && d.UIDs[k-1].Profile == u.Profile {
				t.Errorf("dispatch %q: adjacent ranges %+v and %+v share a profile: not merged", d.Unit, d.UIDs[k-1], u)
			}
			next = uint64(u.Hi) + 1
		}
		if next != uint64(ir.MaxUID)+1 {
			t.Errorf("dispatch %q ends at %d, want the whole uid space", d.Unit, next-1)
		}
	}
}

// rulesFor lists the 1-based indices of the rules that apply to uid in the
// default context.
func rulesFor(rs *ir.Ruleset, uid uint32) []int {
	return rulesIn(rs, &rs.Dispatch[len(rs.Dispatch)-1], uid)
}

func rulesIn(rs *ir.Ruleset, d *ir.Dispatch, uid uint32) []int {
	p := d.ProfileOf(uid)
	if p < 0 {
		return nil
	}
	// The socket counts as inside the unit's cgroup and those above it.
	in := map[string]bool{}
	for _, r := range rs.Rules {
		for _, pr := range append(append([]ir.Principal(nil), r.Who...), r.Except...) {
			if pr.Kind == "unit" && d.Unit != "" && (d.Cgroup == pr.Cgroup || strings.HasPrefix(d.Cgroup, pr.Cgroup+"/")) {
				in[pr.Cgroup] = true
			}
		}
	}
	var out []int
	for _, ri := range rs.ProfileRules(p) {
		if ir.ContainsUID(ruleUIDs(&rs.Rules[ri], in), uid) {
			out = append(out, rs.Rules[ri].Index)
		}
	}
	return out
}

func ivs(pairs ...uint32) []ir.Interval {
	var out []ir.Interval
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, ir.Interval{Lo: pairs[i], Hi: pairs[i+1]})
	}
	return out
}

// eq compares values as printed: ir.Intervals and []ir.Interval (and
// ir.UIDRanges and []ir.UIDRange) count as equal when their elements are.
func eq(a, b any) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }

// fixedBug fails the test: the behaviour it checks was a bug, since
// fixed; seeing it again is a regression.
func fixedBug(t *testing.T, bug string) {
	t.Helper()
	t.Errorf("a fixed bug is back: %s", bug)
}
