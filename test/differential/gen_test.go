package differential

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"

	"github.com/ownerwall/ownerwall/internal/lab"
)

// genPolicy is a policy as the generator builds it and the shrinker cuts
// it down; yaml() renders it.
type genPolicy struct {
	Outbound string // "" leaves the key out (accept)
	Services []genService
	Rules    []genRule
}

type genService struct {
	Name string
	Dest genDest
}

type genRule struct {
	Name    string // "" leaves the key out ("rule N")
	Serve   bool
	Service string // a service name instead of Dest
	Dest    genDest
	Who     []string // nil leaves the key out (everyone)
	Except  []string
	Action  string
	Log     bool
}

type genDest struct {
	Hosts   []string // nil leaves the key out (any)
	HostAny bool     // host: any, written out
	TCP     *genPorts
	UDP     *genPorts
}

type genPorts struct {
	Any   bool
	Items []string // "7001" or "7001-7003"
}

func (p genPolicy) clone() genPolicy {
	out := genPolicy{Outbound: p.Outbound}
	for _, s := range p.Services {
		out.Services = append(out.Services, genService{Name: s.Name, Dest: s.Dest.clone()})
	}
	for _, r := range p.Rules {
		c := r
		c.Dest = r.Dest.clone()
		c.Who = cloneStrings(r.Who)
		c.Except = cloneStrings(r.Except)
		out.Rules = append(out.Rules, c)
	}
	return out
}

func (d genDest) clone() genDest {
	out := d
	out.Hosts = cloneStrings(d.Hosts)
	for _, pp := range []**genPorts{&out.TCP, &out.UDP} {
		if *pp != nil {
			c := **pp
			c.Items = cloneStrings(c.Items)
			*pp = &c
		}
	}
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func q(s string) string { return strconv.Quote(s) }

func (p genPolicy) yaml() string {
	var b strings.Builder
	b.WriteString("version: 1\n")
	if p.Outbound != "" {
		fmt.Fprintf(&b, "outbound: %s\n", p.Outbound)
	}
	if len(p.Services) > 0 {
		b.WriteString("services:\n")
		for _, s := range p.Services {
			fmt.Fprintf(&b, "  %s: %s\n", s.Name, s.Dest.yaml())
		}
	}
	b.WriteString("rules:\n")
	for _, r := range p.Rules {
		var f []string
		if r.Name != "" {
			f = append(f, "name: "+q(r.Name))
		}
		key := "to"
		if r.Serve {
			key = "serve"
		}
		if r.Service != "" {
			f = append(f, key+": "+r.Service)
		} else {
			f = append(f, key+": "+r.Dest.yaml())
		}
		if r.Who != nil {
			f = append(f, "who: "+list(r.Who))
		}
		if r.Except != nil {
			f = append(f, "except: "+list(r.Except))
		}
		f = append(f, "action: "+r.Action)
		if r.Log {
			f = append(f, "log: true")
		}
		fmt.Fprintf(&b, "  - {%s}\n", strings.Join(f, ", "))
	}
	return b.String()
}

func list(items []string) string {
	qs := make([]string, len(items))
	for i, s := range items {
		qs[i] = q(s)
	}
	return "[" + strings.Join(qs, ", ") + "]"
}

func (d genDest) yaml() string {
	var f []string
	switch {
	case d.HostAny:
		f = append(f, "host: any")
	case len(d.Hosts) == 1:
		f = append(f, "host: "+q(d.Hosts[0]))
	case len(d.Hosts) > 1:
		f = append(f, "host: "+list(d.Hosts))
	}
	if d.TCP != nil {
		f = append(f, "tcp: "+d.TCP.yaml())
	}
	if d.UDP != nil {
		f = append(f, "udp: "+d.UDP.yaml())
	}
	return "{" + strings.Join(f, ", ") + "}"
}

func (p *genPorts) yaml() string {
	if p.Any {
		return "any"
	}
	if len(p.Items) == 1 {
		return q(p.Items[0])
	}
	return list(p.Items)
}

// ---------------------------------------------------------------------------
// The generator.

// principals every rule draws from: accounts by both spellings, uids with
// and without accounts, ranges, groups by name and gid (primary and
// supplementary members, a gid with no group entry), everyone.
var principalPool = []string{
	"alice", "user:bob", "carol", "dave", "user:erin", "frank", "gina", "root", "nobody",
	"uid:0", "uid:1000", "uid:1500", "uid:4242", "uid:70000",
	"uid:1000-1999", "uid:1001-1003", "uid:2000-4999", "uid:60000-80000", "uid:1-65533",
	"uid:0-4294967294", "uid:65534-4294967294", "uid:4294967294",
	"group:staff", "group:wheel", "group:ops", "gid:100", "gid:10", "gid:400", "gid:1000",
	"everyone",
}

// hostPool: this host by every name, strudel by every name, networks that
// contain them or not, in both families and IPv4-mapped spellings.
var hostPool = []string{
	"local", "local", "local",
	lab.RemoteV4, lab.RemoteV6, "::ffff:" + lab.RemoteV4, lab.RemoteDNS, lab.RemoteDNS,
	lab.HostV4, lab.HostV6, "myself", "localhost",
	"127.0.0.1", "127.0.0.2", "127.0.0.0/8", "127.0.0.0/30", "::1", "::ffff:127.0.0.1",
	"198.18.0.0/24", "198.18.0.0/31", "198.18.0.2/31", lab.RemoteV4 + "/32", "198.18.0.0/16",
	"2001:db8:18::/64", "2001:db8:18::/127", "2001:db8:18::2/127", "2001:db8::/32",
	"::ffff:198.18.0.0/120",
	"10.0.0.0/8", "192.0.2.1", "2001:db8:99::/48", "0.0.0.0/0", "::/0",
}

type gen struct {
	r *rand.Rand
}

func (g *gen) pick(s []string) string { return s[g.r.Intn(len(s))] }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// weighted picks an index by weights.
func (g *gen) weighted(w ...int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := g.r.Intn(total)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

func (g *gen) action() string {
	return []string{"accept", "reject", "drop"}[g.weighted(45, 40, 15)]
}

func (g *gen) port() int {
	if g.chance(0.1) {
		return []int{portLo, portHi}[g.r.Intn(2)]
	}
	return 7001 + g.r.Intn(5)
}

func (g *gen) ports() *genPorts {
	switch g.weighted(20, 35, 20, 20, 5) {
	case 0:
		return &genPorts{Any: true}
	case 1:
		return &genPorts{Items: []string{strconv.Itoa(g.port())}}
	case 2:
		lo := portLo + g.r.Intn(portHi-portLo)
		hi := lo + 1 + g.r.Intn(portHi-lo)
		return &genPorts{Items: []string{fmt.Sprintf("%d-%d", lo, hi)}}
	case 3:
		n := 2 + g.r.Intn(3)
		var items []string
		for range n {
			if g.chance(0.3) {
				lo := portLo + g.r.Intn(portHi-portLo)
				items = append(items, fmt.Sprintf("%d-%d", lo, lo+1))
			} else {
				items = append(items, strconv.Itoa(g.port()))
			}
		}
		return &genPorts{Items: items}
	default:
		// A long list: more than the 15 ports one multiport rule holds.
		var items []string
		for i := range 12 + g.r.Intn(8) {
			items = append(items, strconv.Itoa(8100+2*i))
			if i%4 == 0 {
				items = append(items, fmt.Sprintf("%d-%d", 8200+10*i, 8205+10*i))
			}
		}
		items = append(items, strconv.Itoa(g.port()))
		g.r.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		return &genPorts{Items: items}
	}
}

func (g *gen) principals(max int) []string {
	n := 1 + g.r.Intn(max)
	out := make([]string, 0, n)
	for range n {
		out = append(out, g.pick(principalPool))
	}
	return out
}

func (g *gen) toDest() genDest {
	var d genDest
	switch g.weighted(25, 5, 45, 25) {
	case 1:
		d.HostAny = true
	case 2:
		d.Hosts = []string{g.pick(hostPool)}
	case 3:
		for range 2 + g.r.Intn(2) {
			d.Hosts = append(d.Hosts, g.pick(hostPool))
		}
	}
	switch g.weighted(35, 25, 15, 25) {
	case 0:
		d.TCP = g.ports()
	case 1:
		d.UDP = g.ports()
	case 2:
		d.TCP, d.UDP = g.ports(), g.ports()
	} // else: no protocol, every protocol
	return d
}

func (g *gen) serveDest() genDest {
	var d genDest
	switch g.weighted(45, 35, 20) {
	case 0:
		d.TCP = g.ports()
	case 1:
		d.UDP = g.ports()
	default:
		d.TCP, d.UDP = g.ports(), g.ports()
	}
	return d
}

// policy generates one policy.
func (g *gen) policy() genPolicy {
	var p genPolicy
	switch g.weighted(45, 10, 25, 20) {
	case 1:
		p.Outbound = "accept"
	case 2:
		p.Outbound = "reject"
	case 3:
		p.Outbound = "drop"
	}
	if g.chance(0.2) {
		p.Services = append(p.Services, genService{Name: "svc-to", Dest: g.toDest()})
	}
	if g.chance(0.1) {
		p.Services = append(p.Services, genService{Name: "svc-serve", Dest: g.serveDest()})
	}
	n := 1 + g.r.Intn(6)
	for i := range n {
		var r genRule
		if g.chance(0.6) {
			r.Name = fmt.Sprintf("r%d", i+1)
		}
		r.Serve = g.chance(0.25)
		if r.Serve {
			r.Dest = g.serveDest()
		} else {
			r.Dest = g.toDest()
		}
		for _, s := range p.Services {
			if s.Name == "svc-serve" && r.Serve && g.chance(0.5) || s.Name == "svc-to" && !r.Serve && g.chance(0.3) {
				r.Service, r.Dest = s.Name, genDest{}
			}
		}
		if g.chance(0.7) {
			r.Who = g.principals(3)
		}
		if g.chance(0.3) {
			r.Except = g.principals(2)
		}
		r.Action = g.action()
		r.Log = g.chance(0.1)
		p.Rules = append(p.Rules, r)
	}
	// A serve service no rule uses is still a valid policy; a to service
	// used by serve would not be: only svc-serve is used by serve rules.
	return p
}

// ---------------------------------------------------------------------------
// Attempts.

// attempt is one connection attempt the differential makes, in lab terms,
// with what explain is asked about it.
type attempt struct {
	Lab lab.Attempt
	// For reports.
	Who   string // "alice", "uid 4242", "strudel"
	Proto string
	Addr  string // as dialled, unbracketed
	Port  int
}

func dial(addr string, port int, proto string) string {
	if strings.Contains(addr, ":") {
		addr = "[" + addr + "]"
	}
	return fmt.Sprintf("%s:%d/%s", addr, port, proto)
}

// attempt generates one attempt: a local process (an account, or a bare
// uid) connecting to this host or strudel, or strudel connecting in to a
// local listener. srcPorts are the local UDP ports still free for an
// attempt to send from (ports no local listener holds, each used by one
// attempt of a lab at most, since attempts run concurrently).
func (g *gen) attempt(srcPorts *[]int) attempt {
	var a attempt
	a.Proto = []string{"tcp", "udp"}[g.r.Intn(2)]
	if g.chance(0.3) {
		a.Who = "strudel"
		a.Addr = g.pick(inboundAddrs)
		a.Port = 7001 + g.r.Intn(5) // every one has a local listener
		a.Lab = lab.Attempt{From: "remote", To: dial(a.Addr, a.Port, a.Proto)}
		return a
	}
	if g.chance(0.25) {
		uid := bareUIDs[g.r.Intn(len(bareUIDs))]
		a.Who = fmt.Sprintf("uid %d", uid)
		a.Lab.UID = uid
	} else {
		a.Who = g.pick(accountNames)
		a.Lab.User = a.Who
		if g.chance(0.1) {
			// Carrying a group's gid without being a member (sg, newgrp,
			// setgid): membership is by account, so nothing changes.
			a.Lab.Gid = g.pick([]string{"10", "100", "300", "400"})
		}
	}
	if g.chance(0.55) {
		a.Addr = g.pick(localAddrs)
	} else {
		a.Addr = g.pick(remoteAddrs)
	}
	a.Port = g.port()
	a.Lab.To = dial(a.Addr, a.Port, a.Proto)
	if len(*srcPorts) > 0 && (*srcPorts)[0] != a.Port && g.chance(0.2) {
		// Sent from a port serve rules may name: for UDP, both kinds of
		// rule see the datagram; a TCP SYN is never a serve rule's. (Not to
		// the same port: to this host, that would be the socket itself.)
		a.Lab.SrcPort = (*srcPorts)[0]
		*srcPorts = (*srcPorts)[1:]
	}
	return a
}

func (a attempt) String() string {
	s := a.Who
	if a.Lab.Gid != "" {
		s += " (with gid " + a.Lab.Gid + ", no supplementary groups)"
	}
	s += " -> " + a.Lab.To
	if a.Lab.SrcPort != 0 {
		s += fmt.Sprintf(" from local port %d", a.Lab.SrcPort)
	}
	return s
}
