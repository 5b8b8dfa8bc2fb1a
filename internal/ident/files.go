package ident

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParsePasswd reads passwd(5) lines, as /etc/passwd or `getent passwd` print them.
func ParsePasswd(r io.Reader) ([]Account, error) {
	var out []Account
	err := eachLine(r, func(n int, f []string) error {
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

// ParseGroup reads group(5) lines.
func ParseGroup(r io.Reader) ([]Group, error) {
	var out []Group
	err := eachLine(r, func(n int, f []string) error {
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

func eachLine(r io.Reader, fn func(n int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
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
