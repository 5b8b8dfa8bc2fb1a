package ident

import (
	"context"
	"errors"
	"sort"
	"testing"
)

const passwd = `root:x:0:0:root:/root:/bin/sh
# a comment
alice:x:1000:1000::/home/alice:/bin/sh
bob:x:1001:10::/home/bob:/bin/sh
carol:x:1002:1002::/home/carol:/bin/sh
`

const group = `root:x:0:
wheel:x:10:alice, ghost ,carol
alice:x:1000:
carol:x:1002:
empty:x:20:
`

func TestMembersArePrimaryAndSupplementary(t *testing.T) {
	d, err := NewStatic(passwd, group)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g, err := d.LookupGroup(ctx, "wheel")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Members(ctx, d, g)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Membership{}
	for _, m := range ms {
		got[m.Name] = m.Via
	}
	want := map[string]Membership{"bob": Primary, "alice": Supplementary, "carol": Supplementary}
	if len(got) != len(want) {
		t.Fatalf("members %v, want %v (ghost has no account)", got, want)
	}
	for n, v := range want {
		if got[n] != v {
			t.Errorf("%s: %q, want %q", n, got[n], v)
		}
	}
	e, _ := d.LookupGroup(ctx, "empty")
	if ms, _ := Members(ctx, d, e); len(ms) != 0 {
		t.Errorf("empty group has members %v", ms)
	}
}

func TestStaticNotFound(t *testing.T) {
	d, _ := NewStatic(passwd, group)
	ctx := context.Background()
	if _, err := d.LookupUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("user: %v", err)
	}
	if _, err := d.LookupGID(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("gid: %v", err)
	}
	if _, err := d.UnitCgroup(ctx, "x.service"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unit: %v", err)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := NewStatic("alice:x:notanumber:1::/:/bin/sh\n", ""); err == nil {
		t.Error("a bad uid was accepted")
	}
	if _, err := NewStatic("", "wheel:x\n"); err == nil {
		t.Error("a short group line was accepted")
	}
}

// TestNSSAgainstThisHost asks the real getent: root exists everywhere.
func TestNSSAgainstThisHost(t *testing.T) {
	n := NewNSS()
	ctx := context.Background()
	root, err := n.LookupUser(ctx, "root")
	if err != nil {
		t.Skipf("getent: %v", err)
	}
	if root.UID != 0 {
		t.Errorf("root has uid %d", root.UID)
	}
	byUID, err := n.LookupUID(ctx, 0)
	if err != nil || byUID.Name != "root" {
		t.Errorf("uid 0: %+v %v", byUID, err)
	}
	if _, err := n.LookupUser(ctx, "no-such-user-ownerwall"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := n.LookupUser(ctx, "0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a numeric name must not be taken as a uid: %v", err)
	}
	all, err := n.Accounts(ctx)
	if err != nil || len(all) == 0 {
		t.Fatalf("accounts: %d, %v", len(all), err)
	}
	names := make([]string, len(all))
	for i, a := range all {
		names[i] = a.Name
	}
	sort.Strings(names)
	if i := sort.SearchStrings(names, "root"); i == len(names) || names[i] != "root" {
		t.Errorf("root not enumerated")
	}
}
