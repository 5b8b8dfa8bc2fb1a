package ident

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ParsePasswd reads passwd(5) lines, as /etc/passwd or `getent passwd` print them.
func ParsePasswd(r io.Reader) ([]Account, error) {
	var w passwdWriter
	if _, err := io.Copy(&w, r); err != nil {
		return nil, err
	}
	return w.finish()
}

// ParseGroup reads group(5) lines.
func ParseGroup(r io.Reader) ([]Group, error) {
	var w groupWriter
	if _, err := io.Copy(&w, r); err != nil {
		return nil, err
	}
	return w.finish()
}

func parsePasswd(text string) ([]Account, error) {
	var w passwdWriter
	w.Write([]byte(text))
	return w.finish()
}

func parseGroup(text string) ([]Group, error) {
	var w groupWriter
	w.Write([]byte(text))
	return w.finish()
}

// passwdWriter parses passwd(5) text as it is written to it: `getent
// passwd` is read while it runs, and its megabytes are never held. The
// names of the accounts of one write share one string.
type passwdWriter struct {
	lines lineSplitter
	out   []Account
	err   error
	// names holds the names of out[named:], one after the other, and
	// nameLens their lengths, until the end of the write.
	names    []byte
	nameLens []int
	named    int
	// byName, if not nil, indexes the first account of each name, as
	// the accounts are parsed (NSS: while getent still runs).
	byName *nameIndex
}

func (w *passwdWriter) Write(p []byte) (int, error) {
	w.lines.split(p, w.entry)
	w.nameBatch()
	return len(p), nil
}

// finish parses the last line if it has no newline, and returns the
// accounts or the first error.
func (w *passwdWriter) finish() ([]Account, error) {
	w.lines.finish(w.entry)
	w.nameBatch()
	if w.err != nil {
		return nil, w.err
	}
	return w.out, nil
}

func (w *passwdWriter) entry(n int, line []byte) {
	if w.err != nil {
		return
	}
	f, nf := cutFields(line)
	if nf < 4 {
		w.err = fmt.Errorf("passwd line %d: want 7 fields", n)
		return
	}
	uid, ok1 := parseID(f[2])
	gid, ok2 := parseID(f[3])
	if !ok1 || !ok2 {
		w.err = fmt.Errorf("passwd line %d: bad uid or gid", n)
		return
	}
	w.names = append(w.names, f[0]...)
	w.nameLens = append(w.nameLens, len(f[0]))
	if len(w.out) == cap(w.out) { // double: append grows large slices by 1.25, copying 5 times as much
		w.out = slices.Grow(w.out, max(cap(w.out), 16))
	}
	w.out = append(w.out, Account{UID: uid, GID: gid})
}

// nameBatch gives the accounts parsed since the last batch their names.
func (w *passwdWriter) nameBatch() {
	if len(w.nameLens) == 0 {
		return
	}
	names := string(w.names)
	for i, n := range w.nameLens {
		a := &w.out[w.named+i]
		a.Name, names = names[:n], names[n:]
		if w.byName != nil {
			w.byName.set(w.out, w.named+i, true)
		}
	}
	w.named = len(w.out)
	w.names, w.nameLens = w.names[:0], w.nameLens[:0]
}

// groupWriter parses group(5) text as it is written to it. The names of a
// group share one string, the line's.
type groupWriter struct {
	lines lineSplitter
	out   []Group
	err   error
}

func (w *groupWriter) Write(p []byte) (int, error) {
	w.lines.split(p, w.entry)
	return len(p), nil
}

func (w *groupWriter) finish() ([]Group, error) {
	w.lines.finish(w.entry)
	if w.err != nil {
		return nil, w.err
	}
	return w.out, nil
}

func (w *groupWriter) entry(n int, b []byte) {
	if w.err != nil {
		return
	}
	line := string(b)
	f, nf := cutFields(line)
	if nf < 3 {
		w.err = fmt.Errorf("group line %d: want 4 fields", n)
		return
	}
	gid, ok := parseID(f[2])
	if !ok {
		w.err = fmt.Errorf("group line %d: bad gid", n)
		return
	}
	g := Group{Name: f[0], GID: gid}
	if nf > 3 && f[3] != "" {
		g.Members = splitMembers(f[3])
	}
	w.out = append(w.out, g)
}

// splitMembers splits a group's member list at commas, dropping blanks
// around names and empty names; nil if none is left.
func splitMembers(list string) []string {
	out := make([]string, 0, strings.Count(list, ",")+1)
	for list != "" {
		m := list
		if i := strings.IndexByte(list, ','); i >= 0 {
			m, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// cutFields returns the first four ':'-separated fields of line and how
// many fields there are, counting at most four.
func cutFields[S ~string | ~[]byte](line S) (f [4]S, n int) {
	start := 0
	for i := 0; i < len(line); i++ {
		if line[i] == ':' {
			f[n], start = line[start:i], i+1
			if n++; n == len(f) {
				return f, n
			}
		}
	}
	f[n] = line[start:]
	return f, n + 1
}

// parseID reads a decimal uid or gid: what strconv.ParseUint(s, 10, 32)
// takes, without making s a string.
func parseID[S ~string | ~[]byte](s S) (uint32, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v = v*10 + uint64(c-'0'); v > uint64(^uint32(0)) {
			return 0, false
		}
	}
	return uint32(v), true
}

// lineSplitter cuts text written in pieces into lines, and passes on those
// that hold an entry, trimmed, with their 1-based line numbers: not blank
// lines, comments, or NIS compat (+/-) lines.
type lineSplitter struct {
	partial []byte // the start of a line the last piece did not end
	n       int
}

func (l *lineSplitter) split(p []byte, entry func(n int, line []byte)) {
	if len(l.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			return
		}
		l.partial = append(l.partial, p[:i]...)
		l.line(l.partial, entry)
		l.partial, p = l.partial[:0], p[i+1:]
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		l.line(p[:i], entry)
		p = p[i+1:]
	}
	l.partial = append(l.partial, p...)
}

// finish passes on the last line, if the text does not end with a newline.
func (l *lineSplitter) finish(entry func(n int, line []byte)) {
	if len(l.partial) > 0 {
		l.line(l.partial, entry)
		l.partial = l.partial[:0]
	}
}

func (l *lineSplitter) line(line []byte, entry func(n int, line []byte)) {
	l.n++
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
		return
	}
	entry(l.n, line)
}
