package compile

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
)

func TestSeedProfiles(t *testing.T) {
	st, err := ident.NewStatic(`root:x:0:0::/root:/bin/sh
plebian:x:1000:1000::/home/plebian:/bin/sh
admin7:x:1001:1001::/home/admin7:/bin/sh
`, "root:x:0:\nwheel:x:10:root,admin7\nplebian:x:1000:\nadmin7:x:1001:\n")
	if err != nil {
		t.Fatal(err)
	}
	rs := compileOK(t, Env{Dir: st, Hosts: st}, `version: 1
services:
  telnet-tunnel: {host: local, tcp: 992}
  rsync-tunnel:  {host: local, tcp: 273}
rules:
  - to: telnet-tunnel
    except: [root]
    action: reject
  - to: rsync-tunnel
    except: ["group:wheel"]
    action: reject
  - to: {tcp: [80, 443]}
    except: [root]
    action: drop
  - serve: {tcp: any}
    except: [root, "group:wheel"]
    action: reject
`)
	wantProfiles := []ir.Profile{{ID: 0, Blocks: []int{0, 1, 2, 3}}, {ID: 1, Blocks: []int{0, 2}}}
	if !eq(rs.Profiles, wantProfiles) {
		t.Errorf("profiles = %+v, want %+v", rs.Profiles, wantProfiles)
	}
	wantUIDs := []ir.UIDRange{
		{Lo: 0, Hi: 0, Profile: -1},
		{Lo: 1, Hi: 1000, Profile: 0},
		{Lo: 1001, Hi: 1001, Profile: 1},
		{Lo: 1002, Hi: ir.MaxUID, Profile: 0},
	}
	if len(rs.Dispatch) != 1 || rs.Dispatch[0].Unit != "" || !eq(rs.Dispatch[0].UIDs, wantUIDs) {
		t.Errorf("dispatch = %+v\nwant one default with %+v", rs.Dispatch, wantUIDs)
	}
}

// TestProfilesShared: 1000 accounts in 3 groups, in every combination. The
// accounts with the same effective rules share one profile, so there are
// at most 2^3 profiles whatever the number of accounts.
func TestProfilesShared(t *testing.T) {
	const n = 1000
	var passwd strings.Builder
	members := [3][]string{}
	inGroup := func(i, g int) bool { return i%[3]int{2, 3, 5}[g] == 0 } // all 8 combinations occur
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("u%04d", i)
		uid := 20000 + 7*i // sparse, so that unrelated uids sit between accounts
		fmt.Fprintf(&passwd, "%s:x:%d:%d::/home/%s:/bin/sh\n", name, uid, 100, name)
		for g := 0; g < 3; g++ {
			if inGroup(i, g) {
				members[g] = append(members[g], name)
			}
		}
	}
	group := "users:x:100:\n"
	for g := 0; g < 3; g++ {
		group += fmt.Sprintf("g%d:x:%d:%s\n", g, 500+g, strings.Join(members[g], ","))
	}
	st, err := ident.NewStatic(passwd.String(), group)
	if err != nil {
		t.Fatal(err)
	}
	rs := compileOK(t, Env{Dir: st, Hosts: st}, `version: 1
rules:
  - to: {tcp: 1}
    who: ["group:g0"]
    action: drop
  - to: {tcp: 2}
    who: ["group:g1"]
    except: ["group:g2"]
    action: drop
  - to: {tcp: 3}
    who: ["group:g2"]
    action: reject
  - to: {tcp: 4}
    who: ["group:users"]
    except: ["group:g0"]
    action: accept
`)
	if len(rs.Profiles) > 8 {
		t.Errorf("%d profiles for 3 groups, want at most 8", len(rs.Profiles))
	}
	expect := func(i int) []int {
		var out []int
		g0, g1, g2 := inGroup(i, 0), inGroup(i, 1), inGroup(i, 2)
		if g0 {
			out = append(out, 1)
		}
		if g1 && !g2 {
			out = append(out, 2)
		}
		if g2 {
			out = append(out, 3)
		}
		if !g0 {
			out = append(out, 4)
		}
		return out
	}
	distinct := map[string]int{} // expected rule list -> profile seen
	for i := 0; i < n; i++ {
		uid := uint32(20000 + 7*i)
		want := expect(i)
		if got := rulesFor(rs, uid); !eq(got, want) {
			t.Fatalf("u%04d (uid %d): rules %v, want %v", i, uid, got, want)
		}
		key := fmt.Sprint(want)
		prof := rs.Dispatch[0].ProfileOf(uid)
		if seen, ok := distinct[key]; ok && seen != prof {
			t.Errorf("rules %s: accounts map to profiles %d and %d, want one shared profile", key, seen, prof)
		}
		distinct[key] = prof
		if got := rulesFor(rs, uid+1); got != nil {
			t.Errorf("uid %d has no account but gets rules %v", uid+1, got)
		}
	}
	if len(rs.Profiles) != len(distinct) {
		t.Errorf("%d profiles for %d distinct rule lists", len(rs.Profiles), len(distinct))
	}
	// The 8 memberships give 6 distinct rule lists: {g2} and {g1,g2} both
	// get rules 3 and 4, {g0,g2} and {g0,g1,g2} both rules 1 and 3.
	if len(distinct) != 6 {
		t.Errorf("test setup: %d distinct rule lists, want 6", len(distinct))
	}
	// The dispatch holds one range per account plus the gaps, merged where
	// neighbours share a profile; never more than 2n+1 ranges.
	if got := len(rs.Dispatch[0].UIDs); got > 2*n+1 {
		t.Errorf("%d dispatch ranges for %d accounts", got, n)
	}
}

func TestProfileRulesKeepPolicyOrder(t *testing.T) {
	_, env := testEnv(t)
	rs := compileOK(t, env, `version: 1
rules:
  - to: {tcp: 1}
    who: [carol]
    action: accept
  - to: {tcp: 1}
    action: reject
  - serve: {tcp: 22}
    who: ["group:wheel"]
    action: accept
  - to: {udp: 53}
    who: ["uid:1000-1002"]
    action: drop
`)
	cases := map[uint32][]int{
		0:    {2, 3},
		1000: {2, 4},
		1002: {1, 2, 3, 4},
		1003: {2},
	}
	for uid, want := range cases {
		if got := rulesFor(rs, uid); !eq(got, want) {
			t.Errorf("uid %d: rules %v, want %v", uid, got, want)
		}
	}
	var keys []string
	for _, p := range rs.Profiles {
		keys = append(keys, fmt.Sprint(p.Blocks))
	}
	sort.Strings(keys)
	if !eq(keys, []string{"[0 1 2 3]", "[1 2]", "[1 3]", "[1]"}) {
		t.Errorf("profiles = %v", keys)
	}
}
