package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/nssblind"
)

// family names the programs of one address family. They are looked up in
// PATH when run, so whichever flavour PATH offers first is used.
type family struct {
	name    string // for messages
	ipt     string // iptables / ip6tables
	restore string
	save    string
	v6      bool
}

var families = []family{
	{name: "IPv4", ipt: "iptables", restore: "iptables-restore", save: "iptables-save"},
	{name: "IPv6", ipt: "ip6tables", restore: "ip6tables-restore", save: "ip6tables-save", v6: true},
}

// lockWait is how long iptables waits for the xtables lock (legacy).
const lockWait = "--wait=10"

// Flavour reports whether the iptables found in PATH is the "legacy" or
// the "nf_tables" one, from `iptables --version`.
func Flavour(ctx context.Context) (string, error) {
	out, err := run(ctx, "iptables", nil, "--version")
	if err != nil {
		return "", err
	}
	return parseFlavour(out)
}

func parseFlavour(version string) (string, error) {
	v := strings.TrimSpace(version)
	switch {
	case strings.Contains(v, "(nf_tables)"):
		return "nf_tables", nil
	case strings.Contains(v, "(legacy)"):
		return "legacy", nil
	case strings.HasPrefix(v, "iptables v") && !strings.Contains(v, "("):
		return "legacy", nil // before 1.8 there was only the legacy one
	}
	return "", fmt.Errorf("iptables --version: cannot tell the flavour from %q", firstLines(v, 1))
}

// Load replaces ownerwall's chains with rs in both families: per family,
// one iptables-restore --noflush transaction (all of it or none of it)
// that fills ownerwall's chains, deletes the ones rs no longer has and
// inserts the jump from OUTPUT if it is missing. Both inputs are tested
// first; if the IPv6 one still fails, the IPv4 part is put back as it was.
func Load(ctx context.Context, rs *ir.Ruleset) error {
	return apply(ctx, [2]state{desiredState(build(rs, false)), desiredState(build(rs, true))})
}

// Flush removes ownerwall's chains and the jump to them, in both families,
// and nothing else.
func Flush(ctx context.Context) error {
	return apply(ctx, [2]state{})
}

// LoadScript makes ownerwall's live chains what a Script or a Snapshot
// says, the same way Load does: whatever is live now (stale chains, a
// missing or doubled jump) is taken into account. A snapshot of nothing
// flushes. It refuses anything but ownerwall's own chains and jump.
func LoadScript(ctx context.Context, script string) error {
	want, err := parseScript(script)
	if err != nil {
		return err
	}
	return apply(ctx, want)
}

// Snapshot is a script that LoadScript takes to put ownerwall's live
// chains back as they are now (or to remove them, if there are none).
func Snapshot(ctx context.Context) (string, error) {
	var st [2]state
	for i, f := range families {
		var err error
		if st[i], err = live(ctx, f); err != nil {
			return "", err
		}
	}
	return "# ownerwall snapshot of the live iptables ruleset\n" + scriptBody(st), nil
}

// Listing is ownerwall's part of the live filter tables, both families, in
// Script's form (restore input, each family after its comment line), ""
// when nothing of it is loaded.
func Listing(ctx context.Context) (string, error) {
	var st [2]state
	empty := true
	for i, f := range families {
		var err error
		if st[i], err = live(ctx, f); err != nil {
			return "", err
		}
		empty = empty && len(st[i].chains) == 0 && st[i].jumps == 0
	}
	if empty {
		return "", nil
	}
	return scriptBody(st), nil
}

// testAppend is a test hook, as in the nft backend: lines added to each
// restore input before COMMIT, to prove that a refusal midway changes
// nothing.
const testAppend = "OWNERWALL_TEST_APPEND"

func apply(ctx context.Context, want [2]state) error {
	type step struct {
		f         family
		cur, want state
		input     string
	}
	var steps []step
	for i, f := range families {
		cur, err := live(ctx, f)
		if err != nil {
			return err
		}
		w := want[i]
		if len(cur.chains) == 0 && cur.jumps == 0 && len(w.chains) == 0 && w.jumps == 0 {
			continue // nothing of ownerwall there, nothing wanted
		}
		input := transition(cur, w)
		if extra := os.Getenv(testAppend); extra != "" {
			input = strings.TrimSuffix(input, "COMMIT\n") + extra + "\nCOMMIT\n"
		}
		steps = append(steps, step{f: f, cur: cur, want: w, input: input})
	}
	for _, s := range steps {
		if err := restore(ctx, s.f, s.input, true); err != nil {
			return err
		}
	}
	for i, s := range steps {
		if err := restore(ctx, s.f, s.input, false); err != nil {
			if i == 0 {
				return err
			}
			// Put back what the earlier families had.
			var failed []string
			for _, done := range steps[:i] {
				if rerr := restore(ctx, done.f, transition(done.want, done.cur), false); rerr != nil {
					failed = append(failed, rerr.Error())
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%w; putting back the earlier families failed too, ownerwall's IPv4 and IPv6 rules now differ: %s", err, strings.Join(failed, "; "))
			}
			return fmt.Errorf("%w (the other family was put back as it was)", err)
		}
	}
	return nil
}

// scriptBody is the two families' restore inputs, each after its comment
// line, as Script prints them.
func scriptBody(st [2]state) string {
	return "# iptables-restore\n" + transition(state{}, st[0]) + "# ip6tables-restore\n" + transition(state{}, st[1])
}

// parseScript reads Script's or Snapshot's form back into the wanted state
// of each family.
func parseScript(script string) ([2]state, error) {
	var out [2]state
	fam := -1
	seen := [2]bool{}
	inTable := false
	idx := [2]map[string]int{{}, {}}
	for n, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		bad := func(why string) ([2]state, error) {
			return [2]state{}, fmt.Errorf("not an ownerwall iptables script: line %d: %s: %q", n+1, why, firstLines(line, 1))
		}
		switch {
		case line == "# iptables-restore":
			fam = 0
		case line == "# ip6tables-restore":
			fam = 1
		case line == "" || strings.HasPrefix(line, "#"):
		case fam < 0:
			return bad("before the # iptables-restore line")
		case line == "*filter":
			if seen[fam] {
				return bad("a second table")
			}
			seen[fam], inTable = true, true
		case !inTable:
			return bad("outside *filter ... COMMIT")
		case line == "COMMIT":
			inTable = false
		case strings.HasPrefix(line, ":"):
			name, rest, _ := strings.Cut(line[1:], " ")
			if !own(name) || len(name) > maxChainName || !strings.HasPrefix(rest, "- ") {
				return bad("not an ownerwall chain")
			}
			if _, dup := idx[fam][name]; !dup {
				idx[fam][name] = len(out[fam].chains)
				out[fam].chains = append(out[fam].chains, chain{name: name})
			}
		case line == "-I OUTPUT 1 -j "+MainChain || line == "-A OUTPUT -j "+MainChain:
			out[fam].jumps = 1
		case strings.HasPrefix(line, "-A "):
			name, rule, _ := strings.Cut(line[3:], " ")
			i, ok := idx[fam][name]
			if !ok {
				return bad("a rule outside ownerwall's declared chains")
			}
			out[fam].chains[i].rules = append(out[fam].chains[i].rules, rule)
		default:
			return bad("not a chain, rule or the jump")
		}
	}
	if !seen[0] || !seen[1] || inTable {
		return [2]state{}, errors.New("not an ownerwall iptables script: want an IPv4 and an IPv6 *filter ... COMMIT, each after its # iptables-restore / # ip6tables-restore line")
	}
	return out, nil
}

// restore feeds input to the family's restore program with --noflush.
//
// It runs blind to the account database (package nssblind): the owner
// match parses every --uid-owner with getpwnam() before it tries a
// number, and glibc reads the whole passwd file for each, so that with
// 100,000 accounts a restore would take hours. ownerwall writes uids as
// numbers only.
func restore(ctx context.Context, f family, input string, test bool) error {
	args := []string{f.restore, lockWait, "--noflush"}
	if test {
		args = append(args, "--test")
	}
	err := nssblind.Do(nssblind.Options{}, func() error {
		_, err := run(ctx, args[0], strings.NewReader(input), args[1:]...)
		return err
	})
	var re *runError
	if errors.As(err, &re) {
		if test {
			return fmt.Errorf("%s refused the %s ruleset, nothing changed: %w", f.restore, f.name, errors.Unwrap(err))
		}
		return fmt.Errorf("%s failed, the %s ruleset is unchanged: %w", f.restore, f.name, errors.Unwrap(err))
	}
	return err
}

// live reads ownerwall's chains and jumps in one family's filter table.
func live(ctx context.Context, f family) (state, error) {
	out, err := run(ctx, f.save, nil, "-t", "filter")
	if err != nil {
		return state{}, err
	}
	st := parseSave(out)
	if st.has(MainChain) {
		// The authority on whether the jump is there is iptables -C.
		switch _, err := run(ctx, f.ipt, nil, append([]string{lockWait, "-C"}, jumpSpec...)...); {
		case err == nil:
			st.jumps = max(st.jumps, 1)
		case exitCode(err) == 1:
			st.jumps = 0
		default:
			return state{}, err
		}
	} else {
		st.jumps = 0 // a jump to a chain that does not exist cannot be there
	}
	return st, nil
}

func (s state) has(name string) bool {
	for _, c := range s.chains {
		if c.name == name {
			return true
		}
	}
	return false
}

// parseSave picks ownerwall's chains, their rules and the jumps to it out of
// iptables-save output for table filter.
func parseSave(out string) state {
	var st state
	idx := map[string]int{}
	inFilter := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "*filter":
			inFilter = true
		case strings.HasPrefix(line, "*"), line == "COMMIT":
			inFilter = false
		case !inFilter:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if own(name) {
				idx[name] = len(st.chains)
				st.chains = append(st.chains, chain{name: name})
			}
		case strings.HasPrefix(line, "-A "):
			name, rule, _ := strings.Cut(line[3:], " ")
			if i, ok := idx[name]; ok {
				st.chains[i].rules = append(st.chains[i].rules, rule)
			} else if name == "OUTPUT" && rule == "-j "+MainChain {
				st.jumps++
			}
		}
	}
	return st
}

func own(name string) bool { return name == MainChain || strings.HasPrefix(name, chainPrefix) }

// Counter is what the rules of one policy rule decided, over both
// families (the nft backend's Counter, field for field).
type Counter struct {
	Rule    int    `json:"rule"`
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Counters sums, over both families, the counters of the rules attributed
// to each policy rule by their comment "ownerwall rule N: NAME", in rule
// order. LOG rules are left out: the packets they see are counted by the
// rule after them. A policy rule that rendered to no iptables rule (it
// applies to no uid) has no entry; nor has the outbound default.
func Counters(ctx context.Context) ([]Counter, error) {
	sums := map[int]*Counter{}
	for _, f := range families {
		out, err := run(ctx, f.save, nil, "-c", "-t", "filter")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(out, "\n") {
			c, ok := parseCounterLine(line)
			if !ok || c.Rule == 0 {
				continue
			}
			if s, ok := sums[c.Rule]; ok {
				s.Packets += c.Packets
				s.Bytes += c.Bytes
			} else {
				sums[c.Rule] = &c
			}
		}
	}
	out := make([]Counter, 0, len(sums))
	for _, c := range sums {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
	return out, nil
}

// parseCounterLine reads `[P:B] -A OWNERWALL-... -m comment --comment
// "ownerwall rule N: NAME" ... -j X`; Rule 0 is the outbound default.
func parseCounterLine(line string) (Counter, bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "[") {
		return Counter{}, false
	}
	cnt, rest, ok := strings.Cut(line[1:], "] ")
	if !ok || !strings.HasPrefix(rest, "-A ") {
		return Counter{}, false
	}
	name, rule, _ := strings.Cut(rest[3:], " ")
	if !own(name) || strings.Contains(rule, " -j LOG ") {
		return Counter{}, false
	}
	ps, bs, _ := strings.Cut(cnt, ":")
	p, err1 := strconv.ParseUint(ps, 10, 64)
	b, err2 := strconv.ParseUint(bs, 10, 64)
	_, after, found := strings.Cut(rule, "--comment ")
	if err1 != nil || err2 != nil || !found {
		return Counter{}, false
	}
	comment := unquote(after)
	c := Counter{Packets: p, Bytes: b}
	if comment == commentDefault {
		return c, true
	}
	head, ruleName, ok := strings.Cut(comment, ": ")
	num, isRule := strings.CutPrefix(head, "ownerwall rule ")
	n, err := strconv.Atoi(num)
	if !ok || !isRule || err != nil || n <= 0 {
		return Counter{}, false
	}
	c.Rule, c.Name = n, ruleName
	return c, true
}

// unquote reads the first word of s as iptables-save wrote it (quote's
// inverse).
func unquote(s string) string {
	if !strings.HasPrefix(s, `"`) {
		word, _, _ := strings.Cut(s, " ")
		return word
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// runError is a failed program: its words and what it said.
type runError struct {
	prog string
	msg  string
	err  error
}

func (e *runError) Error() string { return e.prog + ": " + e.msg }

// Unwrap gives what the program said, without its name.
func (e *runError) Unwrap() error { return errors.New(e.msg) }

func run(ctx context.Context, prog string, stdin *strings.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	// A process group of its own: a Ctrl-C meant for ownerwall (watch)
	// must not stop one family's restore halfway.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return out.String(), &runError{prog: prog, msg: firstLines(msg, 6), err: err}
	}
	return out.String(), nil
}

func exitCode(err error) int {
	var re *runError
	var ee *exec.ExitError
	if errors.As(err, &re) && errors.As(re.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, " | ")
}
