package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/ownerwall/ownerwall/internal/ir"
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
	return apply(ctx, func(f family) []chain { return build(rs, f.v6) }, true)
}

// Flush removes ownerwall's chains and the jump to them, in both families,
// and nothing else.
func Flush(ctx context.Context) error {
	return apply(ctx, func(family) []chain { return nil }, false)
}

func apply(ctx context.Context, want func(family) []chain, jump bool) error {
	type step struct {
		f         family
		cur, want state
		input     string
	}
	var steps []step
	for _, f := range families {
		cur, err := live(ctx, f)
		if err != nil {
			return err
		}
		w := state{chains: want(f)}
		if jump {
			w.jumps = 1
		}
		if len(cur.chains) == 0 && cur.jumps == 0 && len(w.chains) == 0 {
			continue // nothing of ownerwall there, nothing wanted
		}
		steps = append(steps, step{f: f, cur: cur, want: w, input: transition(cur, w)})
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

// restore feeds input to the family's restore program with --noflush.
func restore(ctx context.Context, f family, input string, test bool) error {
	args := []string{lockWait, "--noflush"}
	if test {
		args = append(args, "--test")
	}
	if _, err := run(ctx, f.restore, strings.NewReader(input), args...); err != nil {
		if test {
			return fmt.Errorf("%s refused the %s ruleset, nothing changed: %w", f.restore, f.name, errors.Unwrap(err))
		}
		return fmt.Errorf("%s failed, the %s ruleset is unchanged: %w", f.restore, f.name, errors.Unwrap(err))
	}
	return nil
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

// Live returns ownerwall's part of the live filter tables (IPv4 then
// IPv6) in iptables-save form, "" when nothing of it is loaded.
func Live(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, f := range families {
		st, err := live(ctx, f)
		if err != nil {
			return "", err
		}
		if len(st.chains) == 0 && st.jumps == 0 {
			continue
		}
		fmt.Fprintf(&b, "# %s\n*filter\n", f.restore)
		for _, c := range st.chains {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c.name)
		}
		for range st.jumps {
			b.WriteString("-A OUTPUT -j " + MainChain + "\n")
		}
		for _, c := range st.chains {
			for _, r := range c.rules {
				fmt.Fprintf(&b, "-A %s %s\n", c.name, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String(), nil
}

// Counter is the packets and bytes that rules of one policy rule decided.
type Counter struct{ Packets, Bytes uint64 }

// Counters sums, over both families, the counters of the rules attributed
// to each policy rule (by their comment "ownerwall rule N: ..."), keyed by
// the rule's 1-based index; key 0 is the outbound default. LOG rules are
// left out: the packets they see are counted by the rule after them.
func Counters(ctx context.Context) (map[int]Counter, error) {
	sums := map[int]Counter{}
	for _, f := range families {
		out, err := run(ctx, f.save, nil, "-c", "-t", "filter")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(out, "\n") {
			idx, c, ok := parseCounterLine(line)
			if ok {
				s := sums[idx]
				s.Packets += c.Packets
				s.Bytes += c.Bytes
				sums[idx] = s
			}
		}
	}
	return sums, nil
}

// parseCounterLine reads "[P:B] -A OWNERWALL-... --comment "ownerwall rule N: ..." -j X".
func parseCounterLine(line string) (int, Counter, bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "[") {
		return 0, Counter{}, false
	}
	cnt, rest, ok := strings.Cut(line[1:], "] ")
	if !ok || !strings.HasPrefix(rest, "-A ") {
		return 0, Counter{}, false
	}
	name, rule, _ := strings.Cut(rest[3:], " ")
	if !own(name) || strings.Contains(rule, " -j LOG ") {
		return 0, Counter{}, false
	}
	ps, bs, _ := strings.Cut(cnt, ":")
	p, err1 := strconv.ParseUint(ps, 10, 64)
	b, err2 := strconv.ParseUint(bs, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, Counter{}, false
	}
	idx := -1
	if strings.Contains(rule, "--comment "+quote(commentDefault)+" ") {
		idx = 0
	} else if _, after, ok := strings.Cut(rule, `--comment "ownerwall rule `); ok {
		num, _, _ := strings.Cut(after, ":")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			idx = n
		}
	}
	if idx < 0 {
		return 0, Counter{}, false
	}
	return idx, Counter{Packets: p, Bytes: b}, true
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
