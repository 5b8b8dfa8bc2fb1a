package ident

import (
	"bufio"
	"fmt"
	"math/rand"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The parsers as they were (bufio.Scanner and strings.Split): the fast
// ones must agree with them on any input, errors included.
func refParsePasswd(text string) ([]Account, error) {
	var out []Account
	err := refEachLine(text, func(n int, f []string) error {
		if len(f) < 4 {
			return fmt.Errorf("passwd line %d: want 7 fields", n)
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("passwd line %d: bad uid or gid", n)
		}
		out = append(out, Account{Name: f[0], UID: uint32(uid), GID: uint32(gid)})
		return nil
	})
	return out, err
}

func refParseGroup(text string) ([]Group, error) {
	var out []Group
	err := refEachLine(text, func(n int, f []string) error {
		if len(f) < 3 {
			return fmt.Errorf("group line %d: want 4 fields", n)
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return fmt.Errorf("group line %d: bad gid", n)
		}
		g := Group{Name: f[0], GID: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.Members = append(g.Members, m)
				}
			}
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

func refEachLine(text string, fn func(n int, fields []string) error) error {
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-") {
			continue
		}
		if err := fn(n, strings.Split(line, ":")); err != nil {
			return err
		}
	}
	return sc.Err()
}

// randomText makes passwd- or group-like text, often malformed.
func randomText(r *rand.Rand) string {
	pieces := []string{"root", "alice", "x", ":", ":", ":", ",", ", ", "\n", "\n", "\r\n", " ", "\t", "#", "+", "-",
		"0", "1000", "4294967295", "4294967296", "007", "+1", "", "a:x:1:2::/:/bin/sh\n", "g:x:10:a,b, c,,\n", "é"}
	var b strings.Builder
	for i := r.Intn(40); i > 0; i-- {
		b.WriteString(pieces[r.Intn(len(pieces))])
	}
	return b.String()
}

func TestParsersAgreeWithTheOldOnes(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 50000; i++ {
		text := randomText(r)
		pa, perr := parsePasswd(text)
		ra, rerr := refParsePasswd(text)
		if fmt.Sprint(perr) != fmt.Sprint(rerr) || (perr == nil && !reflect.DeepEqual(pa, ra)) {
			t.Fatalf("passwd %q:\n got %v %v\nwant %v %v", text, pa, perr, ra, rerr)
		}
		pg, perr := parseGroup(text)
		rg, rerr := refParseGroup(text)
		if fmt.Sprint(perr) != fmt.Sprint(rerr) || (perr == nil && !reflect.DeepEqual(pg, rg)) {
			t.Fatalf("group %q:\n got %v %v\nwant %v %v", text, pg, perr, rg, rerr)
		}
	}
}

// TestParseInPieces writes text in pieces of every size, as a pipe would
// deliver it: the result must not depend on where the pieces break.
func TestParseInPieces(t *testing.T) {
	const text = "root:x:0:0:root:/root:/bin/sh\n# c\r\nalice:x:1000:100::/:/bin/sh\r\n\n  bob:x:1001:100\nlast:x:7:7"
	want, err := parsePasswd(text)
	if err != nil || len(want) != 4 || want[3].Name != "last" || want[2].Name != "bob" {
		t.Fatalf("whole: %v %v", want, err)
	}
	for size := 1; size <= len(text); size++ {
		w := passwdWriter{byName: newNameIndex()}
		for s := text; s != ""; {
			k := min(size, len(s))
			w.Write([]byte(s[:k]))
			s = s[k:]
		}
		got, err := w.finish()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("pieces of %d: %v %v", size, got, err)
		}
		for i, a := range got {
			if j, ok := w.byName.find(a.Name, got); !ok || j != i {
				t.Errorf("pieces of %d: %s indexed at %d, %v", size, a.Name, j, ok)
			}
		}
	}
	var g groupWriter
	for _, c := range []byte("wheel:x:10:alice, bob ,carol\nstaff:x:50:") {
		g.Write([]byte{c})
	}
	gs, err := g.finish()
	want2 := []Group{{Name: "wheel", GID: 10, Members: []string{"alice", "bob", "carol"}}, {Name: "staff", GID: 50}}
	if err != nil || !reflect.DeepEqual(gs, want2) {
		t.Errorf("groups byte by byte: %+v %v", gs, err)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	_, err := parsePasswd("root:x:0:0::/:/bin/sh\n\n# c\nbad:x:1\n")
	if err == nil || err.Error() != "passwd line 4: want 7 fields" {
		t.Errorf("short line: %v", err)
	}
	_, err = parseGroup("g:x:1:\nh:x:-1:\n")
	if err == nil || err.Error() != "group line 2: bad gid" {
		t.Errorf("bad gid: %v", err)
	}
}
