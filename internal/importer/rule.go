package importer

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ownerwall/ownerwall/internal/policy"
)

// ruleSpec is one rule's matches and target, read from its -A line.
type ruleSpec struct {
	src     source
	c       cond
	never   bool   // its own matches contradict each other
	fam     family // the family its addresses or protocol are written for
	only    family // -4 or -6: the rule is for that family's ruleset only
	comment string
	target  string // "" when the rule has none
	isGoto  bool
	// Words after -j CHAIN (or after a target ownerwall does not know).
	targetArgs bool
	// Owner matches with --gid-owner but no --suppl-groups.
	gidOnly []gidNote
	// A positive --state/--ctstate as written, and its states.
	stateOpt string
	stateSet ctState
	limit    bool // -m limit: tolerated on LOG rules only
	// What ownerwall cannot express; the rule is not imported.
	unsupported []string
}

// gidNote is a --gid-owner as written, and the principal it became.
type gidNote struct {
	opt string
	p   principal
}

func (sp *ruleSpec) unsupportedf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, u := range sp.unsupported {
		if u == msg {
			return
		}
	}
	sp.unsupported = append(sp.unsupported, msg)
}

// Modules whose options are understood (or, for limit, tolerated).
var knownModules = map[string]bool{
	"tcp": true, "udp": true, "multiport": true, "owner": true, "state": true,
	"conntrack": true, "addrtype": true, "comment": true, "limit": true,
}

type ruleParser struct {
	args   []string
	i      int
	sp     *ruleSpec
	module string
	// The current -m owner's --gid-owner and --suppl-groups.
	gidOpt string
	gidP   principal
	suppl  bool
	local  bool // -o lo or --dst-type LOCAL
	// Options that need -p tcp or -p udp.
	needTCP, needUDP, needPorts string
}

// parseRule reads the words after "-A CHAIN". Malformed words are an error;
// well-formed matches and targets ownerwall cannot express are recorded in
// spec.unsupported.
func parseRule(args []string) (*ruleSpec, error) {
	p := &ruleParser{args: args, sp: &ruleSpec{c: anyCond()}}
	if err := p.run(); err != nil {
		return nil, err
	}
	return p.sp, nil
}

func (p *ruleParser) value(opt string) (string, error) {
	if p.i >= len(p.args) {
		return "", fmt.Errorf("%s needs a value", opt)
	}
	v := p.args[p.i]
	p.i++
	if v == "!" {
		return "", fmt.Errorf("write ! before the option: ! %s VALUE", opt)
	}
	return v, nil
}

// skipValues passes over the values of an option it does not know.
func (p *ruleParser) skipValues() {
	for p.i < len(p.args) && p.args[p.i] != "!" && !strings.HasPrefix(p.args[p.i], "-") {
		p.i++
	}
}

func (p *ruleParser) run() error {
	sp := p.sp
	for p.i < len(p.args) {
		a := p.args[p.i]
		p.i++
		neg := false
		if a == "!" {
			if p.i >= len(p.args) || p.args[p.i] == "!" {
				return fmt.Errorf("a lone !: it goes before an option")
			}
			neg = true
			a = p.args[p.i]
			p.i++
		}
		switch a {
		case "-p", "--protocol":
			v, err := p.value(a)
			if err != nil {
				return err
			}
			if err := p.protocol(v, neg); err != nil {
				return err
			}
		case "-d", "--destination":
			v, err := p.value(a)
			if err != nil {
				return err
			}
			if err := p.destination(v, neg); err != nil {
				return err
			}
		case "-s", "--source":
			v, err := p.value(a)
			if err != nil {
				return err
			}
			for _, e := range strings.Split(v, ",") {
				if h, f, err := parseAddr(e); err == nil && h.name == "" {
					p.hint(f)
				}
			}
			sp.unsupportedf("-s %s: ownerwall rules do not match the source address", clip(v, 40))
		case "-i", "--in-interface":
			if _, err := p.value(a); err != nil {
				return err
			}
			sp.unsupportedf("-i: an incoming interface, which OUTPUT never has")
		case "-o", "--out-interface":
			v, err := p.value(a)
			if err != nil {
				return err
			}
			switch {
			case v == "lo" && !neg:
				p.local = true
			case v == "lo":
				sp.unsupportedf("! -o lo: ownerwall cannot say \"not a local address\"")
			default:
				sp.unsupportedf("-o %s: ownerwall rules match destinations, not interfaces", clip(v, 20))
			}
		case "-f", "--fragment":
			sp.unsupportedf("-f: ownerwall rules do not match fragments")
		case "-4", "--ipv4", "-6", "--ipv6":
			if neg {
				return fmt.Errorf("! cannot negate %s", a)
			}
			sp.only = fam4
			if a == "-6" || a == "--ipv6" {
				sp.only = fam6
			}
		case "-c", "--set-counters":
			for k := 0; k < 2; k++ {
				if _, err := p.value(a); err != nil {
					return err
				}
			}
		case "-m", "--match":
			if neg {
				return fmt.Errorf("! cannot negate -m")
			}
			v, err := p.value(a)
			if err != nil {
				return err
			}
			p.endModule()
			p.module = v
			if !knownModules[v] && !((v == "icmp" || v == "icmp6") && len(sp.unsupported) > 0) {
				sp.unsupportedf("%s", moduleReason(v))
			}
		case "-j", "--jump", "-g", "--goto":
			if neg {
				return fmt.Errorf("! cannot negate %s", a)
			}
			v, err := p.value(a)
			if err != nil {
				return err
			}
			p.endModule()
			sp.target = v
			sp.isGoto = a == "-g" || a == "--goto"
			p.targetOptions(p.args[p.i:])
			p.i = len(p.args)
		default:
			if !strings.HasPrefix(a, "--") || len(a) == 2 {
				return fmt.Errorf("unexpected %q in the rule", clip(a, 30))
			}
			if err := p.moduleOption(a, neg); err != nil {
				return err
			}
		}
	}
	p.endModule()
	return p.finish()
}

func moduleReason(m string) string {
	switch m {
	case "string":
		return "-m string: ownerwall rules do not look into packet contents"
	case "cgroup":
		return "-m cgroup: write the systemd unit as a unit: principal"
	case "limit", "hashlimit", "recent", "connlimit", "quota":
		return fmt.Sprintf("-m %s: ownerwall rules have no rates or quotas", m)
	case "mark", "connmark":
		return fmt.Sprintf("-m %s: ownerwall rules do not match marks", m)
	case "icmp", "icmp6":
		return fmt.Sprintf("-m %s: ownerwall rules match tcp, udp or every protocol", m)
	}
	return fmt.Sprintf("-m %s: ownerwall rules match owners, destinations, protocols and ports, nothing else", clip(m, 30))
}

func (p *ruleParser) hint(f family) {
	if f == famUnknown {
		return
	}
	if p.sp.fam != famUnknown && p.sp.fam != f {
		p.sp.unsupportedf("IPv4 and IPv6 addresses in one rule")
		return
	}
	p.sp.fam = f
}

func (p *ruleParser) protocol(v string, neg bool) error {
	sp := p.sp
	if sp.c.proto != "" {
		return fmt.Errorf("-p is given twice")
	}
	var proto string
	switch strings.ToLower(v) {
	case "tcp", "6":
		proto = "tcp"
	case "udp", "17":
		proto = "udp"
	case "all", "0":
		if neg {
			sp.unsupportedf("! -p all matches nothing")
		}
		return nil
	case "icmp", "1":
		p.hint(fam4)
		sp.unsupportedf("-p %s: ownerwall rules match tcp, udp or every protocol", v)
		return nil
	case "ipv6-icmp", "icmpv6", "58":
		p.hint(fam6)
		sp.unsupportedf("-p %s: ownerwall rules match tcp, udp or every protocol", v)
		return nil
	default:
		sp.unsupportedf("-p %s: ownerwall rules match tcp, udp or every protocol", clip(v, 20))
		return nil
	}
	if neg {
		sp.unsupportedf("! -p %s: ownerwall rules match tcp, udp or every protocol", v)
		return nil
	}
	sp.c.proto = proto
	return nil
}

func (p *ruleParser) destination(v string, neg bool) error {
	sp := p.sp
	if sp.c.hosts.kind != hostAny {
		return fmt.Errorf("-d is given twice")
	}
	var list []hostEntry
	anyHost := false
	for _, e := range strings.Split(v, ",") {
		h, f, err := parseAddr(e)
		if err != nil {
			return err
		}
		p.hint(f)
		if h.name == "" && h.prefix.Bits() == 0 {
			anyHost = true
			continue
		}
		list = appendHost(list, h)
	}
	if neg {
		sp.unsupportedf("! -d %s: ownerwall cannot say \"every destination but\"", clip(v, 40))
		return nil
	}
	if !anyHost {
		sp.c.hosts = hostSet{kind: hostList, list: list}
	}
	return nil
}

// parseAddr reads one -d/-s value: an address, ADDR/LEN, ADDR/MASK or a
// host name.
func parseAddr(s string) (hostEntry, family, error) {
	if a, m, ok := strings.Cut(s, "/"); ok && strings.Contains(m, ".") {
		mask, err := netip.ParseAddr(m)
		if err != nil || !mask.Is4() {
			return hostEntry{}, 0, fmt.Errorf("bad network mask in %q", clip(s, 50))
		}
		bits, ok := maskBits(mask.As4())
		if !ok {
			return hostEntry{}, 0, fmt.Errorf("non-contiguous network mask in %q", clip(s, 50))
		}
		s = fmt.Sprintf("%s/%d", a, bits)
	}
	h, msg := policy.ParseHost(s)
	if msg != "" || h.Kind == policy.HostLocal || h.Kind == policy.HostAny {
		if msg == "" {
			msg = "not an address"
		}
		return hostEntry{}, 0, fmt.Errorf("address %q: %s", clip(s, 50), msg)
	}
	if h.Kind == policy.HostName {
		return hostEntry{name: h.Name}, famUnknown, nil
	}
	f := fam4
	if h.Prefix.Addr().Is6() {
		f = fam6
	}
	if strings.Contains(s, ":") && f == fam4 {
		// An IPv4-mapped IPv6 address: written in an IPv6 ruleset.
		f = fam6
	}
	return hostEntry{prefix: h.Prefix}, f, nil
}

func maskBits(m [4]byte) (int, bool) {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	bits := 0
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	return bits, v == 0
}

func (p *ruleParser) endModule() {
	if p.module == "owner" && p.gidOpt != "" && !p.suppl {
		p.sp.gidOnly = append(p.sp.gidOnly, gidNote{opt: p.gidOpt, p: p.gidP})
	}
	p.module, p.gidOpt, p.suppl = "", "", false
}

func (p *ruleParser) moduleOption(opt string, neg bool) error {
	if p.module != "" && !knownModules[p.module] {
		// The module is unsupported already: pass over its options.
		p.skipValues()
		return nil
	}
	handled, err := p.option(p.module, opt, neg)
	if err != nil || handled {
		return err
	}
	// iptables loads the protocol's match by itself: -p tcp --dport 22.
	if pr := p.sp.c.proto; pr != "" && p.module != pr {
		if handled, err = p.option(pr, opt, neg); err != nil || handled {
			return err
		}
	}
	where := opt
	if p.module != "" {
		where = "-m " + p.module + " " + opt
	}
	p.sp.unsupportedf("%s: ownerwall cannot express it", clip(where, 50))
	p.skipValues()
	return nil
}

// option handles one option of module mod; false: mod has no such option.
func (p *ruleParser) option(mod, opt string, neg bool) (bool, error) {
	sp := p.sp
	switch {
	case (mod == "tcp" || mod == "udp") && (opt == "--dport" || opt == "--destination-port" || opt == "--sport" || opt == "--source-port"):
		v, err := p.value(opt)
		if err != nil {
			return true, err
		}
		if mod == "tcp" {
			p.needTCP = opt
		} else {
			p.needUDP = opt
		}
		ps, ok, err := parsePorts(v, false)
		if err != nil {
			return true, err
		}
		if !ok {
			sp.unsupportedf("%s %s: write ports as numbers", opt, clip(v, 20))
			return true, nil
		}
		if neg {
			sp.unsupportedf("! %s %s: ownerwall cannot say \"every port but\"", opt, v)
			return true, nil
		}
		p.setPorts(opt == "--sport" || opt == "--source-port", ps)
		return true, nil
	case mod == "tcp" && opt == "--tcp-flags":
		mask, err := p.value(opt)
		if err != nil {
			return true, err
		}
		comp, err := p.value(opt)
		if err != nil {
			return true, err
		}
		p.needTCP = opt
		f, ok, err := classifyFlags(mask, comp)
		if err != nil {
			return true, err
		}
		if !ok || neg {
			sp.unsupportedf("%s--tcp-flags %s %s: ownerwall tells a connection's first packet (--syn) and a listener's SYN-ACK, nothing else", negText(neg), mask, comp)
			return true, nil
		}
		p.setFlags(f)
		return true, nil
	case mod == "tcp" && opt == "--syn":
		p.needTCP = opt
		if neg {
			sp.unsupportedf("! --syn: ownerwall rules do not match packets in the middle of a connection")
			return true, nil
		}
		p.setFlags(flagsSYN)
		return true, nil
	case mod == "multiport" && (opt == "--dports" || opt == "--destination-ports" || opt == "--sports" || opt == "--source-ports" || opt == "--ports"):
		v, err := p.value(opt)
		if err != nil {
			return true, err
		}
		if p.needPorts == "" {
			p.needPorts = opt
		}
		ps, ok, err := parsePorts(v, true)
		if err != nil {
			return true, err
		}
		switch {
		case !ok:
			sp.unsupportedf("%s %s: write ports as numbers", opt, clip(v, 30))
		case opt == "--ports":
			sp.unsupportedf("--ports: source or destination port, ownerwall cannot say that")
		case neg:
			sp.unsupportedf("! %s %s: ownerwall cannot say \"every port but\"", opt, clip(v, 30))
		default:
			p.setPorts(opt == "--sports" || opt == "--source-ports", ps)
		}
		return true, nil
	case mod == "owner":
		return true, p.ownerOption(opt, neg)
	case mod == "state" && opt == "--state", mod == "conntrack" && opt == "--ctstate":
		v, err := p.value(opt)
		if err != nil {
			return true, err
		}
		set, ok, err := parseStates(v, mod == "conntrack")
		if err != nil {
			return true, err
		}
		if !ok {
			sp.unsupportedf("%s %s: ownerwall rules do not match NAT states", opt, v)
			return true, nil
		}
		if neg {
			sp.c.state &= stAll &^ set
		} else {
			sp.c.state &= set
			if sp.stateOpt == "" {
				sp.stateOpt, sp.stateSet = opt+" "+v, set
			}
		}
		return true, nil
	case mod == "addrtype" && opt == "--dst-type":
		v, err := p.value(opt)
		if err != nil {
			return true, err
		}
		if v == "LOCAL" && !neg {
			p.local = true
		} else {
			sp.unsupportedf("%s--dst-type %s: ownerwall rules know local addresses, no other address type", negText(neg), clip(v, 30))
		}
		return true, nil
	case mod == "comment" && opt == "--comment":
		v, err := p.value(opt)
		if err != nil {
			return true, err
		}
		if sp.comment == "" {
			sp.comment = v
		} else {
			sp.comment += "; " + v
		}
		return true, nil
	case mod == "limit" && (opt == "--limit" || opt == "--limit-burst"):
		if _, err := p.value(opt); err != nil {
			return true, err
		}
		sp.limit = true
		return true, nil
	}
	return false, nil
}

func negText(neg bool) string {
	if neg {
		return "! "
	}
	return ""
}

func (p *ruleParser) setPorts(source bool, ps portSet) {
	c := &p.sp.c
	dst := &c.dports
	if source {
		dst = &c.sports
	}
	r, never := conjPorts(*dst, ps)
	if never {
		p.sp.never = true
	}
	*dst = r
}

func (p *ruleParser) setFlags(f tcpFlags) {
	c := &p.sp.c
	if c.flags != flagsAny && c.flags != f {
		p.sp.never = true
		return
	}
	c.flags = f
}

func (p *ruleParser) ownerOption(opt string, neg bool) error {
	sp := p.sp
	switch opt {
	case "--uid-owner":
		v, err := p.value(opt)
		if err != nil {
			return err
		}
		pr, why, err := parseUID(v)
		if err != nil {
			return err
		}
		if why != "" {
			sp.unsupportedf("--uid-owner %s: %s", clip(v, 40), why)
			return nil
		}
		p.addOwner(pr, neg)
	case "--gid-owner":
		v, err := p.value(opt)
		if err != nil {
			return err
		}
		pr, why, err := parseGID(v)
		if err != nil {
			return err
		}
		if why != "" {
			sp.unsupportedf("--gid-owner %s: %s", clip(v, 40), why)
			return nil
		}
		p.gidOpt, p.gidP = negText(neg)+opt+" "+v, pr
		p.addOwner(pr, neg)
	case "--suppl-groups":
		p.suppl = true
	case "--socket-exists":
		if neg {
			sp.unsupportedf("! --socket-exists: packets without a socket have no owner, ownerwall leaves them alone")
		}
	case "--pid-owner", "--sid-owner", "--cmd-owner":
		if _, err := p.value(opt); err != nil {
			return err
		}
		sp.unsupportedf("%s: gone from Linux; write the program's systemd unit as a unit: principal", opt)
	default:
		sp.unsupportedf("-m owner %s: ownerwall cannot express it", clip(opt, 30))
		p.skipValues()
	}
	return nil
}

func (p *ruleParser) addOwner(pr principal, neg bool) {
	c := &p.sp.c
	if neg {
		c.except = appendPrincipals(c.except, pr)
		return
	}
	if c.who == nil {
		c.who = &pr
		return
	}
	q, empty, ok := intersect(*c.who, pr)
	switch {
	case !ok:
		p.sp.unsupportedf("the owner must be both %s and %s, and a policy rule's who is a list of alternatives", c.who.text(), pr.text())
	case empty:
		p.sp.never = true
	default:
		c.who = &q
	}
}

// parseUID reads a --uid-owner value: N, N-M or a user name.
func parseUID(v string) (principal, string, error) {
	lo, hi, isRange := strings.Cut(v, "-")
	if allDigits(lo) && (!isRange || allDigits(hi)) {
		a, err := parseIDNum(lo)
		if err != nil {
			return principal{}, "", fmt.Errorf("--uid-owner %q: %v", clip(v, 40), err)
		}
		b := a
		if isRange {
			if b, err = parseIDNum(hi); err != nil {
				return principal{}, "", fmt.Errorf("--uid-owner %q: %v", clip(v, 40), err)
			}
			if b < a {
				return principal{}, "", fmt.Errorf("--uid-owner %q: the range runs backwards", v)
			}
		}
		return principal{kind: policy.KindUID, lo: a, hi: b}, "", nil
	}
	if _, err := policy.ParsePrincipal("user:" + v); err != nil || allDigits(v) {
		return principal{}, "not a user name ownerwall accepts", nil
	}
	return principal{kind: policy.KindUser, name: v}, "", nil
}

// parseGID reads a --gid-owner value: N, N-N or a group name.
func parseGID(v string) (principal, string, error) {
	lo, hi, isRange := strings.Cut(v, "-")
	if allDigits(lo) && (!isRange || allDigits(hi)) {
		a, err := parseIDNum(lo)
		if err != nil {
			return principal{}, "", fmt.Errorf("--gid-owner %q: %v", clip(v, 40), err)
		}
		if isRange {
			b, err := parseIDNum(hi)
			if err != nil {
				return principal{}, "", fmt.Errorf("--gid-owner %q: %v", clip(v, 40), err)
			}
			if b < a {
				return principal{}, "", fmt.Errorf("--gid-owner %q: the range runs backwards", v)
			}
			if b != a {
				return principal{}, "a range of groups: a policy names one gid at a time (gid:N)", nil
			}
		}
		return principal{kind: policy.KindGID, lo: a, hi: a}, "", nil
	}
	if _, err := policy.ParsePrincipal("group:" + v); err != nil {
		return principal{}, "not a group name ownerwall accepts", nil
	}
	return principal{kind: policy.KindGroup, name: v}, "", nil
}

func parseIDNum(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > 4294967295 {
		return 0, fmt.Errorf("%q is not an id (0-%d)", clip(s, 20), uint64(policy.MaxID))
	}
	if v > policy.MaxID {
		// 4294967295 is (uid_t)-1, which no socket has.
		v = policy.MaxID
	}
	return uint32(v), nil
}

// parsePorts reads N, N:M, N:, :M, and with multi a comma-separated list of
// these. ok false: a service name, which ownerwall does not look up.
func parsePorts(v string, multi bool) (portSet, bool, error) {
	items := []string{v}
	if multi {
		items = strings.Split(v, ",")
	} else if strings.Contains(v, ",") {
		return portSet{}, false, fmt.Errorf("port %q: a list needs -m multiport", clip(v, 40))
	}
	ps := portSet{set: true}
	for _, it := range items {
		lo, hi, isRange := strings.Cut(it, ":")
		if !isRange {
			lo = it
		}
		var r portRange
		for k, s := range []string{lo, hi} {
			if k == 1 && !isRange {
				r.hi = r.lo
				break
			}
			if s == "" && isRange {
				if k == 0 {
					r.lo = 0
				} else {
					r.hi = 65535
				}
				continue
			}
			if !allDigits(s) {
				if s != "" && !strings.ContainsAny(s, " \t") && !strings.HasPrefix(s, "-") {
					return portSet{}, false, nil // a service name
				}
				return portSet{}, false, fmt.Errorf("port %q is not a number", clip(it, 30))
			}
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil || n > 65535 {
				return portSet{}, false, fmt.Errorf("port %q is out of range (0-65535)", clip(s, 20))
			}
			if k == 0 {
				r.lo = uint16(n)
			} else {
				r.hi = uint16(n)
			}
		}
		if r.hi < r.lo {
			// iptables swaps a backwards range
			r.lo, r.hi = r.hi, r.lo
		}
		ps.ranges = append(ps.ranges, r)
	}
	return ps.normalize(), true, nil
}

const (
	tcpFIN = 1 << iota
	tcpSYN
	tcpRST
	tcpPSH
	tcpACK
	tcpURG
	tcpALL = tcpFIN | tcpSYN | tcpRST | tcpPSH | tcpACK | tcpURG
)

func parseFlagList(s string) (int, error) {
	v := 0
	for _, f := range strings.Split(s, ",") {
		switch strings.ToUpper(f) {
		case "FIN":
			v |= tcpFIN
		case "SYN":
			v |= tcpSYN
		case "RST":
			v |= tcpRST
		case "PSH":
			v |= tcpPSH
		case "ACK":
			v |= tcpACK
		case "URG":
			v |= tcpURG
		case "ALL":
			v |= tcpALL
		case "NONE":
		default:
			return 0, fmt.Errorf("unknown TCP flag %q", clip(f, 20))
		}
	}
	return v, nil
}

// classifyFlags reads --tcp-flags MASK COMP: a SYN-ACK (SYN and ACK set,
// all else in MASK clear), a connection's first SYN, or something ownerwall
// cannot express.
func classifyFlags(mask, comp string) (tcpFlags, bool, error) {
	m, err := parseFlagList(mask)
	if err != nil {
		return 0, false, err
	}
	c, err := parseFlagList(comp)
	if err != nil {
		return 0, false, err
	}
	c &= m
	if m&(tcpSYN|tcpACK) != tcpSYN|tcpACK {
		return 0, false, nil
	}
	switch c {
	case tcpSYN | tcpACK:
		return flagsSYNACK, true, nil
	case tcpSYN:
		return flagsSYN, true, nil
	}
	return 0, false, nil
}

// parseStates reads a --state/--ctstate list. ok false: SNAT or DNAT.
func parseStates(v string, ct bool) (ctState, bool, error) {
	var set ctState
	ok := true
	for _, s := range strings.Split(v, ",") {
		switch strings.ToUpper(s) {
		case "NEW":
			set |= stNew
		case "ESTABLISHED":
			set |= stEstablished
		case "RELATED":
			set |= stRelated
		case "INVALID":
			set |= stInvalid
		case "UNTRACKED":
			set |= stUntracked
		case "SNAT", "DNAT":
			if !ct {
				return 0, false, fmt.Errorf("unknown state %q (only -m conntrack has it)", s)
			}
			ok = false
		default:
			return 0, false, fmt.Errorf("unknown conntrack state %q", clip(s, 20))
		}
	}
	return set, ok, nil
}

// targetOptions reads what follows -j TARGET.
func (p *ruleParser) targetOptions(rest []string) {
	sp := p.sp
	switch sp.target {
	case "ACCEPT", "DROP", "RETURN":
		if len(rest) > 0 {
			sp.unsupportedf("%q after -j %s", clip(strings.Join(rest, " "), 40), sp.target)
		}
	case "REJECT":
		for k := 0; k < len(rest); k++ {
			if rest[k] == "--reject-with" && k+1 < len(rest) {
				k++
				continue
			}
			sp.unsupportedf("%q after -j REJECT", clip(strings.Join(rest[k:], " "), 40))
			return
		}
	case "LOG":
		for _, a := range rest {
			if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--log-") {
				sp.unsupportedf("%q after -j LOG", clip(a, 40))
				return
			}
		}
	default:
		// A chain takes no options; another target is refused as a whole
		// when the walk meets it.
		sp.targetArgs = len(rest) > 0
	}
}

// finish checks what needs the whole rule: ports need their protocol, and
// -o lo / --dst-type LOCAL narrows -d.
func (p *ruleParser) finish() error {
	sp := p.sp
	if p.needTCP != "" && sp.c.proto != "tcp" {
		sp.unsupportedf("%s without -p tcp", p.needTCP)
	}
	if p.needUDP != "" && sp.c.proto != "udp" {
		sp.unsupportedf("-m udp %s without -p udp", p.needUDP)
	}
	if p.needPorts != "" && sp.c.proto == "" {
		sp.unsupportedf("%s without -p tcp or -p udp", p.needPorts)
	}
	if p.local {
		c, never, why := conj(sp.c, cond{hosts: hostSet{kind: hostLocal}, state: stAll})
		switch {
		case why != "":
			sp.unsupportedf("%s", why)
		case never:
			sp.never = true
		default:
			sp.c = c
		}
	}
	if sp.c.state == 0 {
		sp.never = true
	}
	return nil
}
