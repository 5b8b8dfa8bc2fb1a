package compile

import (
	"fmt"
	"testing"
)

// TestBlocks: consecutive rules that test the same packets with the same
// action are one block; a different port, action, direction or a log
// ends it.
func TestBlocks(t *testing.T) {
	_, env := testEnv(t)
	rs := compileOK(t, env, `version: 1
services:
  tunnel: {host: 127.0.0.1, tcp: 992}
rules:
  - {to: tunnel, who: [alice], action: accept}
  - {to: tunnel, who: [bob], action: accept}
  - {to: tunnel, who: ["uid:1500"], action: accept}
  - {to: tunnel, who: [carol], action: accept, log: true}
  - {to: tunnel, who: [dave], action: accept}
  - {to: {host: 127.0.0.1, tcp: 993}, who: [frank], action: accept}
  - {to: {host: 127.0.0.1, tcp: 993}, who: [root], action: drop}
  - {serve: {tcp: 992}, who: [root], action: drop}
  - {to: tunnel, action: reject}
  - {to: tunnel, action: reject}
`)
	checkInvariants(t, rs)
	var got []string
	for _, b := range rs.Blocks {
		got = append(got, fmt.Sprint(b.Rules))
	}
	want := []string{"[0 1 2]", "[3]", "[4]", "[5]", "[6]", "[7]", "[8 9]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("blocks = %v, want %v", got, want)
	}
	// Each account still meets exactly its own rules, in order.
	for uid, rules := range map[uint32][]int{
		1000: {1, 9, 10}, 1001: {2, 9, 10}, 1500: {3, 9, 10}, 1002: {4, 9, 10},
		1003: {5, 9, 10}, 2000: {6, 9, 10}, 0: {7, 8, 9, 10}, 1004: {9, 10},
	} {
		if r := rulesFor(rs, uid); !eq(r, rules) {
			t.Errorf("uid %d: rules %v, want %v", uid, r, rules)
		}
	}
}

// TestOneRulePerAccountIsTwoProfiles: a rule per account over one service
// compiles to two profiles, whatever the number of accounts: the kernel
// load does not grow by a chain per account.
func TestOneRulePerAccountIsTwoProfiles(t *testing.T) {
	_, env := testEnv(t)
	src := "version: 1\nservices:\n  db: {host: local, tcp: 5432}\nrules:\n"
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		src += fmt.Sprintf("  - {to: db, who: [%s], action: accept}\n", u)
	}
	src += "  - {to: db, action: reject}\n"
	rs := compileOK(t, env, src)
	checkInvariants(t, rs)
	if len(rs.Blocks) != 2 || len(rs.Profiles) != 2 {
		t.Errorf("%d blocks and %d profiles, want 2 and 2", len(rs.Blocks), len(rs.Profiles))
	}
	if r := rulesFor(rs, 1500); !eq(r, []int{5, 7}) {
		t.Errorf("erin meets rules %v, want [5 7]", r)
	}
}
