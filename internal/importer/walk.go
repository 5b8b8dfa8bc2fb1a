package importer

import (
	"fmt"
	"strings"

	"github.com/ownerwall/ownerwall/internal/policy"
)

// outRule is one policy rule, before the two families are merged.
type outRule struct {
	srcs    []source // the line(s) that decide: one per family
	fams    []family
	dir     policy.Direction
	c       cond
	action  policy.Action
	log     bool
	comment string // -m comment of the deciding rule
	suffix  string // appended to a name made from the line
	notes   []note // comments written before the rule
	// Only one family's ruleset has it (set by merge).
	oneFamily bool
}

// note is a comment in the policy about a line that became no rule.
type note struct {
	src source
	fam family
	msg string
}

type walkResult struct {
	rs       *ruleset
	outbound policy.Action
	rules    []*outRule
	notes    []note // after the last rule
}

const (
	maxSteps = 100000 // rule visits while following jumps
	maxRules = 10000  // policy rules and comments from one ruleset
	maxNest  = 64     // chains deep
)

type walker struct {
	im    *importer
	rs    *ruleset
	res   *walkResult
	notes []note
	log   *pendingLog
	// The first accept that takes every SYN-ACK (an ESTABLISHED accept):
	// a serve rule after it never fires in iptables.
	est     *source
	estWhat string
	steps   int
	nNotes  int
}

type pendingLog struct {
	src source
	c   cond
}

// walk follows OUTPUT and the chains it leads to, and returns the rules
// they amount to, in evaluation order.
func (im *importer) walk(rs *ruleset) (*walkResult, error) {
	out := rs.chains["OUTPUT"]
	res := &walkResult{rs: rs, outbound: policy.Accept}
	if out.policy == "DROP" {
		res.outbound = policy.Drop
	}
	w := &walker{im: im, rs: rs, res: res}
	if !w.chain(out, anyCond(), true, []string{"OUTPUT"}) {
		return nil, Errors{{File: rs.file, Line: rs.line, Msg: fmt.Sprintf("following the jumps from OUTPUT gives more than %d rules (or visits more than %d): too large to import", maxRules, maxSteps)}}
	}
	w.flushLog()
	res.notes = w.notes
	return res, nil
}

func (w *walker) warn(src source, format string, args ...any) {
	w.im.warnf(src, format, args...)
}

// skip records a rule that becomes no policy rule: a warning, and a
// comment in the policy.
func (w *walker) skip(src source, format string, args ...any) {
	w.flushLog()
	msg := fmt.Sprintf(format, args...)
	w.warn(src, "%s", msg)
	w.addNote(note{src: src, fam: w.rs.fam, msg: msg})
}

func (w *walker) addNote(n note) {
	w.notes = append(w.notes, n)
	w.nNotes++
}

func (w *walker) flushLog() {
	if w.log == nil {
		return
	}
	src := w.log.src
	w.log = nil
	msg := "not imported: -j LOG: ownerwall logs what a rule decides (log: true), and no rule with the same matches follows this one"
	w.warn(src, "%s", msg)
	w.addNote(note{src: src, fam: w.rs.fam, msg: msg})
}

// chain walks one chain with base conjoined to every rule. It returns false
// when the ruleset is too large.
func (w *walker) chain(ch *chain, base cond, top bool, stack []string) bool {
	for _, r := range ch.rules {
		w.steps++
		if w.steps > maxSteps || len(w.res.rules)+w.nNotes > maxRules {
			return false
		}
		sp, src := r.spec, r.src
		if sp.only != famUnknown && sp.only != w.rs.fam {
			continue // -4 or -6: not part of this ruleset
		}
		if sp.limit && sp.target != "LOG" {
			sp.unsupportedf("%s", moduleReason("limit"))
		}
		if t, ok := w.rs.chains[sp.target]; ok && sp.targetArgs {
			sp.unsupportedf("words after -j %s: a chain takes no options", t.name)
		}
		if len(sp.unsupported) > 0 {
			msg := "not imported: " + strings.Join(sp.unsupported, "; ")
			if t, ok := w.rs.chains[sp.target]; ok && !isBuiltin(t.name) {
				msg += fmt.Sprintf(" (nor the rules of chain %s, which it leads to)", t.name)
			}
			w.skip(src, "%s", msg)
			continue
		}
		if sp.fam != famUnknown && sp.fam != w.rs.fam {
			w.skip(src, "not imported: an %s address in the %s ruleset", sp.fam, w.rs.fam)
			continue
		}
		for _, g := range sp.gidOnly {
			w.warn(src, "%s without --suppl-groups looks only at the group a process runs with, so it misses members for whom the group is supplementary; the imported %s counts both kinds of member", g.opt, g.p.text())
		}
		if sp.never {
			w.skip(src, "not imported: the rule never matches (its matches contradict each other)")
			continue
		}
		c, never, why := conj(base, sp.c)
		if why != "" {
			w.skip(src, "not imported: %s", why)
			continue
		}
		if never {
			w.skip(src, "not imported: never matches the packets that the rules leading to it let through")
			continue
		}
		switch t := sp.target; t {
		case "":
			w.skip(src, "not imported: no target (a rule that only counts packets)")
		case "ACCEPT":
			w.decide(src, sp, c, policy.Accept, "")
		case "DROP":
			w.decide(src, sp, c, policy.Drop, "")
		case "REJECT":
			w.decide(src, sp, c, policy.Reject, "")
		case "LOG":
			w.flushLog()
			w.log = &pendingLog{src: src, c: c}
		case "RETURN":
			if top {
				w.decide(src, sp, c, w.res.outbound, " (the OUTPUT policy)")
				continue
			}
			w.flushLog()
			var stop bool
			if base, stop = w.ret(src, sp, base, ch.name, "RETURN"); stop {
				w.flushLog()
				return true
			}
		default:
			next, ok := w.rs.chains[t]
			switch {
			case !ok:
				w.skip(src, "not imported: -j %s: %s", clip(t, 30), targetReason(t))
				continue
			case isBuiltin(t):
				w.skip(src, "not imported: -j %s: a rule cannot jump to a built-in chain", t)
				continue
			case strings.HasPrefix(t, "OWNERWALL"):
				w.skip(src, "not imported: chain %s is ownerwall's own: import the policy it was applied from instead", t)
				continue
			case len(stack) >= maxNest:
				w.skip(src, "not imported: chains nested more than %d deep", maxNest)
				continue
			}
			loop := false
			for _, s := range stack {
				loop = loop || s == t
			}
			if loop {
				w.skip(src, "not imported: chain %s leads back into itself", t)
				continue
			}
			w.flushLog()
			if !w.chain(next, c, false, append(stack[:len(stack):len(stack)], t)) {
				return false
			}
			if !sp.isGoto {
				continue
			}
			// What -g leaves undecided returns from this chain.
			if top {
				w.decide(src, sp, c, w.res.outbound, fmt.Sprintf(" (what chain %s leaves undecided: the OUTPUT policy)", t))
				continue
			}
			var stop bool
			if base, stop = w.ret(src, sp, base, ch.name, "-g"); stop {
				w.flushLog()
				return true
			}
		}
	}
	return true
}

func targetReason(t string) string {
	switch t {
	case "MARK", "CONNMARK", "CLASSIFY", "DSCP", "TOS", "TCPMSS", "SECMARK", "CONNSECMARK", "CT", "NOTRACK",
		"NFLOG", "ULOG", "NFQUEUE", "QUEUE", "AUDIT", "TEE", "TRACE", "CHECKSUM", "HMARK", "IDLETIMER", "LED",
		"SET", "SNAT", "DNAT", "MASQUERADE", "REDIRECT", "TPROXY", "SYNPROXY", "RATEEST":
		return "ownerwall's actions are accept, reject and drop (and log: true)"
	}
	return "no such chain or target"
}

// ret handles a RETURN (or what a -g leaves undecided) inside a user
// chain: the rest of the chain no longer sees what it matches. A policy has
// no chains, so that is only expressible when the RETURN matches nothing
// but one owner: the rest of the chain then excepts that owner (or applies
// to that owner only, for ! --uid-owner). stop: the rest is unreachable.
func (w *walker) ret(src source, sp *ruleSpec, base cond, chainName, what string) (cond, bool) {
	q := sp.c
	if q.unrestricted() {
		return base, true
	}
	if q.ownerOnly() {
		var neg *cond
		switch {
		case q.who != nil && len(q.except) == 0:
			neg = &cond{except: []principal{*q.who}, state: stAll}
		case q.who == nil && len(q.except) == 1:
			neg = &cond{who: &q.except[0], state: stAll}
		}
		if neg != nil {
			nb, never, why := conj(base, *neg)
			if why == "" {
				return nb, never
			}
		}
	}
	w.warn(src, "not imported: %s with these matches inside chain %s: a policy cannot skip the rest of a chain, so the rules after it in %s are imported as if it were not there (they may match more than they did)", what, chainName, chainName)
	return base, false
}

// decide turns one deciding rule into a policy rule, or a note when
// ownerwall covers it by itself or cannot express it.
func (w *walker) decide(src source, sp *ruleSpec, c cond, action policy.Action, suffix string) {
	st := c.state
	for _, ps := range []portSet{c.dports, c.sports} {
		if rs, all := ps.policyRanges(); !all && len(rs) == 0 {
			w.skip(src, "not imported: never matches: port 0 is no connection's port")
			return
		}
	}
	if c.serve() {
		what := "--sport rule"
		if c.flags == flagsSYNACK {
			what = "SYN-ACK rule"
		}
		switch {
		case st&stEstablished == 0:
			w.skip(src, "not imported: never matches: to conntrack a listener's SYN-ACK is ESTABLISHED, which the state match leaves out")
			return
		case c.hosts.kind != hostAny:
			w.skip(src, "not imported: a %s with a destination: a serve rule cannot restrict the client's address", what)
			return
		case c.dports.set:
			w.skip(src, "not imported: a %s with --dport: a serve rule cannot restrict the client's port", what)
			return
		case c.proto == "":
			w.skip(src, "not imported: a %s without -p tcp or -p udp", what)
			return
		}
		if w.est != nil {
			w.warn(src, "this %s never fires: line %d (%s) accepts every SYN-ACK before it, since to conntrack a listener's SYN-ACK is a reply; the imported serve rule does apply, as ownerwall checks serve rules before it lets replies pass", what, w.est.line, w.estWhat)
		}
		w.emit(src, sp, c, policy.Serve, action, suffix)
		return
	}
	switch {
	case c.sports.set:
		w.skip(src, "not imported: --sport on outbound connections: ownerwall rules do not match their local port")
		return
	case st&stNew != 0:
		if sp.stateOpt != "" && sp.stateSet&stNew != 0 && sp.stateSet&stEstablished != 0 && action == policy.Accept {
			w.warn(src, "%s on an accept takes every new connection: the state match restricts nothing (imported as a plain accept)", sp.stateOpt)
		}
	case st&^(stEstablished|stRelated) == 0:
		if action == policy.Accept {
			w.noteEst(src, sp, c)
			w.flushLog()
			w.addNote(note{src: src, fam: w.rs.fam, msg: "replies of accepted connections: ownerwall lets them pass by itself"})
			return
		}
		w.skip(src, "not imported: a %s of established or related packets: ownerwall rules decide connections when they start", action)
		return
	default:
		w.skip(src, "not imported: a rule on %s packets only: ownerwall rules decide connections when they start", statesText(st))
		return
	}
	if action == policy.Accept {
		w.noteEst(src, sp, c)
	}
	w.emit(src, sp, c, policy.To, action, suffix)
}

// noteEst records an accept that takes every SYN-ACK.
func (w *walker) noteEst(src source, sp *ruleSpec, c cond) {
	if w.est != nil || c.state&stEstablished == 0 || c.hasOwner() || (c.proto != "" && c.proto != "tcp") ||
		c.hosts.kind != hostAny || c.dports.set || c.flags != flagsAny {
		return
	}
	s := src
	w.est = &s
	w.estWhat = "-j ACCEPT"
	if sp.stateOpt != "" {
		w.estWhat = sp.stateOpt + " -j ACCEPT"
	}
}

func statesText(st ctState) string {
	var names []string
	for _, s := range []struct {
		bit  ctState
		name string
	}{{stNew, "NEW"}, {stEstablished, "ESTABLISHED"}, {stRelated, "RELATED"}, {stInvalid, "INVALID"}, {stUntracked, "UNTRACKED"}} {
		if st&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	return strings.Join(names, ",")
}

func (w *walker) emit(src source, sp *ruleSpec, c cond, dir policy.Direction, action policy.Action, suffix string) {
	r := &outRule{
		srcs:    []source{src},
		fams:    []family{w.rs.fam},
		dir:     dir,
		c:       c,
		action:  action,
		comment: sp.comment,
		suffix:  suffix,
	}
	if w.log != nil {
		if w.log.c.key() == c.key() {
			r.log = true
			r.notes = append(r.notes, note{src: w.log.src, fam: w.rs.fam, msg: "-j LOG: imported as log: true on the next rule"})
			w.log = nil
		} else {
			w.flushLog()
		}
	}
	r.notes = append(w.notes, r.notes...)
	w.notes = nil
	w.res.rules = append(w.res.rules, r)
}
