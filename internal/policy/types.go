// Package policy parses and validates an ownerwall policy (version 1),
// keeping the position of every value so that each problem can be reported
// as FILE:LINE:COL. It does no I/O beyond the bytes it is given.
package policy

import "net/netip"

// Action is what happens to a matching packet.
type Action string

const (
	Accept Action = "accept"
	Reject Action = "reject"
	Drop   Action = "drop"
)

// Direction says whether a rule governs outbound connections (to) or the
// serving of inbound ones (serve).
type Direction string

const (
	To    Direction = "to"
	Serve Direction = "serve"
)

// Policy is a parsed, validated policy.
type Policy struct {
	File        string
	Version     int
	Outbound    Action
	OutboundPos Pos
	Services    map[string]*Dest
	Rules       []*Rule

	broken []string // services whose definition had problems
}

// Rule is one entry of `rules`, with its destination already looked up when
// it names a service.
type Rule struct {
	Index   int // 1-based position in the rules list
	Name    string
	Pos     Pos
	Dir     Direction
	Service string // the named service, if `to`/`serve` named one
	Dest    *Dest
	Who     []Principal // never empty: defaults to everyone
	Except  []Principal
	Action  Action
	Log     bool
}

// PrincipalKind is the sort of a principal reference.
type PrincipalKind string

const (
	KindUser     PrincipalKind = "user"
	KindUID      PrincipalKind = "uid"
	KindGroup    PrincipalKind = "group"
	KindGID      PrincipalKind = "gid"
	KindUnit     PrincipalKind = "unit"
	KindEveryone PrincipalKind = "everyone"
)

// Principal is one reference in `who` or `except`.
type Principal struct {
	Kind PrincipalKind
	Name string // user, group or unit name
	Lo   uint32 // uid range or gid, for numeric kinds
	Hi   uint32
	Text string // as written
	Pos  Pos
}

// HostKind is the sort of one `host` entry.
type HostKind string

const (
	HostLocal  HostKind = "local"
	HostAny    HostKind = "any"
	HostPrefix HostKind = "prefix"
	HostName   HostKind = "name"
)

// Host is one entry of a destination's `host`.
type Host struct {
	Kind   HostKind
	Prefix netip.Prefix // HostPrefix: IPv4-mapped IPv6 is stored as IPv4
	Name   string       // HostName
	Pos    Pos
}

// PortRange is an inclusive port range.
type PortRange struct{ Lo, Hi uint16 }

// Ports is the `tcp` or `udp` value of a destination.
type Ports struct {
	Given  bool
	Any    bool
	Ranges []PortRange
	Pos    Pos
}

// Dest is a destination: where a `to` rule connects, or which local ports a
// `serve` rule listens on.
type Dest struct {
	Pos   Pos
	Hosts []Host // empty means any host
	TCP   Ports
	UDP   Ports
}

// AllProtocols reports whether the destination names no protocol, which
// means every protocol.
func (d *Dest) AllProtocols() bool { return !d.TCP.Given && !d.UDP.Given }
