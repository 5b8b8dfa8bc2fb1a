package ident

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fakeGetent answers like getent over passwd and group text; hidden
// accounts answer by name or uid but are not listed (SSSD's default).
type fakeGetent struct {
	passwd, group string
	hidden        []Account
	mu            sync.Mutex     // Prefetch asks for both databases at once
	calls         map[string]int // "passwd", "group", "passwd KEY", ...
}

func (f *fakeGetent) getent(_ context.Context, w io.Writer, db string, keys ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[strings.Join(append([]string{db}, keys...), " ")]++
	text := f.passwd
	if db == "group" {
		text = f.group
	}
	if len(keys) == 0 {
		_, err := io.WriteString(w, text)
		return err
	}
	for _, line := range strings.Split(text, "\n") {
		if fs := strings.Split(line, ":"); len(fs) > 2 && (fs[0] == keys[0] || fs[2] == keys[0]) {
			_, err := io.WriteString(w, line+"\n")
			return err
		}
	}
	if db == "passwd" {
		for _, a := range f.hidden {
			if a.Name == keys[0] || fmt.Sprint(a.UID) == keys[0] {
				_, err := fmt.Fprintf(w, "%s:x:%d:%d::/:/bin/sh\n", a.Name, a.UID, a.GID)
				return err
			}
		}
	}
	return ErrNotFound
}

func newFakeNSS(passwd, group string, hidden ...Account) (*NSS, *fakeGetent) {
	f := &fakeGetent{passwd: passwd, group: group, hidden: hidden, calls: map[string]int{}}
	return NewNSSWith(f.getent), f
}

func names(as []Account) string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s/%d", a.Name, a.UID))
	}
	return strings.Join(out, " ")
}

func TestNSSCountsAccountsItDoesNotList(t *testing.T) {
	ctx := context.Background()
	n, f := newFakeNSS(passwd, group+"users:x:100:sam\nstaff:x:50:\n",
		Account{Name: "sam", UID: 5000, GID: 100}, Account{Name: "tess", UID: 5001, GID: 50})
	if err := n.Prefetch(ctx); err != nil {
		t.Fatal(err)
	}
	tess, err := n.LookupUser(ctx, "tess")
	if err != nil || tess.UID != 5001 {
		t.Fatalf("tess: %+v %v", tess, err)
	}
	all, err := n.Accounts(ctx)
	if err != nil || names(all) != "root/0 alice/1000 bob/1001 carol/1002 tess/5001" {
		t.Errorf("accounts: %s %v", names(all), err)
	}
	staff, _ := n.LookupGroup(ctx, "staff")
	ms, err := Members(ctx, n, staff)
	if err != nil || len(ms) != 1 || ms[0].Name != "tess" || ms[0].Via != Primary {
		t.Errorf("staff: tess's primary group, she was looked up: %+v %v", ms, err)
	}
	users, _ := n.LookupGroup(ctx, "users")
	ms, err = Members(ctx, n, users)
	if err != nil || len(ms) != 1 || ms[0].Name != "sam" || ms[0].Via != Supplementary {
		t.Errorf("users: %+v %v", ms, err)
	}
	if a, err := n.LookupUID(ctx, 5000); err != nil || a.Name != "sam" {
		t.Errorf("uid 5000: %+v %v", a, err)
	}
	if _, err := n.LookupUser(ctx, "nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("nosuch: %v", err)
	}
	if f.calls["passwd"] != 1 || f.calls["group"] != 1 || f.calls["passwd sam"] != 1 || f.calls["passwd 5000"] != 0 {
		t.Errorf("getent runs: %v", f.calls)
	}
}

func TestNSSFirstListedWins(t *testing.T) {
	ctx := context.Background()
	n, _ := newFakeNSS("root:x:0:0::/:/bin/sh\nroot:x:999:5::/:/bin/sh\ntoor:x:0:5::/:/bin/sh\n", "five:x:5:root\n")
	if a, err := n.LookupUser(ctx, "root"); err != nil || a.UID != 0 {
		t.Errorf("root: %+v %v", a, err)
	}
	if a, err := n.LookupUID(ctx, 0); err != nil || a.Name != "root" {
		t.Errorf("uid 0: %+v %v", a, err)
	}
	if a, err := n.LookupUID(ctx, 999); err != nil || a.Name != "root" || a.GID != 5 {
		t.Errorf("uid 999: %+v %v", a, err)
	}
	all, _ := n.Accounts(ctx)
	if names(all) != "root/0 root/999 toor/0" {
		t.Errorf("accounts: %s", names(all))
	}
	five, _ := n.LookupGroup(ctx, "five")
	ms, _ := Members(ctx, n, five)
	if fmt.Sprint(ms) != "[{{root 999 5} primary} {{toor 0 5} primary}]" {
		t.Errorf("five: %v", ms)
	}
}

func TestNSSForget(t *testing.T) {
	ctx := context.Background()
	n, f := newFakeNSS(passwd, group, Account{Name: "sam", UID: 5000, GID: 100})
	if _, err := n.LookupUser(ctx, "sam"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.LookupGroup(ctx, "wheel"); err != nil {
		t.Fatal(err)
	}
	f.passwd += "dave:x:1003:10::/:/bin/sh\n"
	f.group = strings.Replace(f.group, "wheel:x:10:alice, ghost ,carol", "wheel:x:10:bob", 1)

	n.ForgetGroups()
	wheel, err := n.LookupGroup(ctx, "wheel")
	if err != nil || !reflect.DeepEqual(wheel.Members, []string{"bob"}) {
		t.Errorf("wheel after ForgetGroups: %+v %v", wheel, err)
	}
	if _, err := n.LookupUser(ctx, "dave"); err != nil { // asked for alone: the listing is still cached
		t.Errorf("dave: %v", err)
	}
	if f.calls["group"] != 2 || f.calls["passwd"] != 1 || f.calls["passwd dave"] != 1 {
		t.Errorf("getent runs: %v", f.calls)
	}

	n.ForgetAccounts()
	all, err := n.Accounts(ctx)
	if err != nil || names(all) != "root/0 alice/1000 bob/1001 carol/1002 dave/1003" {
		t.Errorf("accounts after ForgetAccounts (sam is forgotten): %s %v", names(all), err)
	}
	if a, err := n.LookupUID(ctx, 1003); err != nil || a.Name != "dave" {
		t.Errorf("uid 1003: %+v %v", a, err)
	}
	ms, err := Members(ctx, n, wheel)
	if err != nil || fmt.Sprint(ms) != "[{{bob 1001 10} primary} {{dave 1003 10} primary}]" {
		t.Errorf("wheel: %v %v", ms, err)
	}
	if f.calls["passwd"] != 2 || f.calls["group"] != 2 {
		t.Errorf("getent runs: %v", f.calls)
	}
}

func TestNameIndex(t *testing.T) {
	var list []Account
	x := newNameIndex()
	for i := 0; i < 5000; i++ {
		list = append(list, Account{Name: fmt.Sprintf("n%d", i%4000), UID: uint32(i)})
		if isNew := x.set(list, i, true); isNew != (i < 4000) {
			t.Fatalf("set %d: new %v", i, isNew)
		}
	}
	for i := 0; i < 4000; i++ {
		if j, ok := x.find(fmt.Sprintf("n%d", i), list); !ok || j != i {
			t.Fatalf("find n%d: %d %v", i, j, ok)
		}
	}
	list = append(list, Account{Name: "n7", UID: 77})
	if x.set(list, len(list)-1, false) {
		t.Error("n7 is not new")
	}
	if j, _ := x.find("n7", list); list[j].UID != 77 {
		t.Errorf("n7 was not replaced: %+v", list[j])
	}
	if _, ok := x.find("n4000", list); ok {
		t.Error("found n4000")
	}
	if _, ok := newNameIndex().find("x", nil); ok {
		t.Error("found in an empty index")
	}
}

func TestPrimaryTableScansThenIndexes(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	var as []Account
	for i := 0; i < 3000; i++ {
		as = append(as, Account{Name: fmt.Sprint("a", i), UID: uint32(i), GID: uint32(r.Intn(40))})
	}
	tab := newPrimaryTable(as)
	for _, gid := range append(r.Perm(45), 3, 44, 17) {
		var want []Account
		for _, a := range as {
			if a.GID == uint32(gid) {
				want = append(want, a)
			}
		}
		if got := tab.withGID(uint32(gid)); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Fatalf("gid %d (complete %v): %d accounts, want %d", gid, tab.complete, len(got), len(want))
		}
	}
	if !tab.complete {
		t.Error("45 gids asked for, and not indexed")
	}
}

// TestNameIndexInOrder: asked for in list order, names are found without
// hashing; a repeated name must still lead to its first position.
func TestNameIndexInOrder(t *testing.T) {
	list := []Account{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	x := newNameIndex()
	for i := range list {
		x.set(list, i, true)
	}
	for _, q := range []string{"a", "b", "c", "b", "a", "c", "c"} {
		if j, ok := x.find(q, list); !ok || list[j].Name != q {
			t.Errorf("find %s: %d %v", q, j, ok)
		}
	}
	list = append(list, Account{Name: "a", UID: 1})
	x.set(list, 3, true) // a second "a": the first stays
	for _, q := range []string{"c", "a"} {
		if j, ok := x.find(q, list); !ok || list[j].Name != q || list[j].UID != 0 {
			t.Errorf("find %s after a repeat: %d %v", q, j, ok)
		}
	}
}
