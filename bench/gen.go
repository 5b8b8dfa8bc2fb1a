package main

import (
	"fmt"
	"strings"
)

// The world every configuration is measured in: N accounts, a listener on
// 127.0.0.1:Port run by root, and a client account that the last
// per-account (shape A) or per-group (shape B) rule matches.
const (
	Port = 5000
	// Account i (0-based) has uid UIDBase+2i+1: the uids in between belong
	// to no account and are outside the policy, so that no uid map can
	// fold the N accounts into one range.
	UIDBase    = 100000
	UsersGID   = 100    // every generated account's primary group
	GroupBase  = 200000 // shape B: group bgK (K = 1..Slices) has gid GroupBase+K
	Slices     = 20     // shape B: number of rules
	GroupFirst = 11     // shape B: rules 1..10 are uid ranges, 11..20 groups
	NewbieUID  = 99000  // the account added to a group by the add-to-group test
	NewbieName = "newbie"
	// TargetGroup is the group the client account is in (shape B) and the
	// one newbie is added to.
	TargetGroup = "bg20"
)

// Shape is how the policy covers the N accounts.
type Shape string

const (
	// ShapeA: one rule per account (N rules), then one that refuses
	// everyone else.
	ShapeA Shape = "A"
	// ShapeB: 20 rules, 10 over uid ranges and 10 over groups (supplementary
	// membership), together covering the N accounts, then one that refuses
	// everyone else.
	ShapeB Shape = "B"
)

// World is the generated content for one (N, shape).
type World struct {
	N     int
	Shape Shape

	Passwd, Group string
	// GroupAdded is Group with newbie appended to TargetGroup's members:
	// the one-line change of the add-to-group measurement.
	GroupAdded string
	Policy     string // ownerwall policy YAML
	Seed       string // iptables-restore input of the seed articles' method
	// SeedNft is Seed as the nf_tables flavour of iptables-restore stores
	// it in the kernel (table ip filter, chain OUTPUT, same expressions
	// one rule after the other), as nft -f input; empty when a rule has
	// no native form (--suppl-groups).
	SeedNft string

	// The measured client: uid, primary gid, supplementary gids.
	ClientUID    int
	ClientGID    int
	ClientGroups []int
}

func accountName(i int) string { return fmt.Sprintf("bu%06d", i+1) }
func accountUID(i int) int     { return UIDBase + 2*i + 1 }
func groupName(k int) string   { return fmt.Sprintf("bg%02d", k) }
func groupGID(k int) int       { return GroupBase + k }

// slice returns the 0-based account indices [lo, hi) covered by shape B's
// rule k (1-based): the N accounts cut into Slices contiguous pieces.
func slice(n, k int) (lo, hi int) {
	return (k - 1) * n / Slices, k * n / Slices
}

// Generate builds the world for n accounts in the given shape.
func Generate(n int, shape Shape) *World {
	w := &World{N: n, Shape: shape}
	var pw strings.Builder
	pw.Grow(n * 64)
	pw.WriteString("root:x:0:0:root:/root:/bin/sh\n")
	pw.WriteString("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	fmt.Fprintf(&pw, "%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", NewbieName, NewbieUID, UsersGID)
	for i := range n {
		fmt.Fprintf(&pw, "%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", accountName(i), accountUID(i), UsersGID)
	}
	w.Passwd = pw.String()

	head := fmt.Sprintf("root:x:0:\nusers:x:%d:\nnogroup:x:65534:\n", UsersGID)
	var grp, added strings.Builder
	grp.WriteString(head)
	added.WriteString(head)
	for k := 1; k <= Slices; k++ {
		var members []string
		if shape == ShapeB && k >= GroupFirst {
			lo, hi := slice(n, k)
			members = make([]string, 0, hi-lo)
			for i := lo; i < hi; i++ {
				members = append(members, accountName(i))
			}
		}
		line := fmt.Sprintf("%s:x:%d:%s\n", groupName(k), groupGID(k), strings.Join(members, ","))
		grp.WriteString(line)
		if groupName(k) == TargetGroup {
			members = append(members, NewbieName)
			line = fmt.Sprintf("%s:x:%d:%s\n", groupName(k), groupGID(k), strings.Join(members, ","))
		}
		added.WriteString(line)
	}
	w.Group, w.GroupAdded = grp.String(), added.String()

	last := n - 1
	w.ClientUID, w.ClientGID = accountUID(last), UsersGID
	if shape == ShapeB {
		w.ClientGroups = []int{groupGID(Slices)} // the last account is in the last slice
	}
	w.Policy = w.policy()
	w.Seed = w.seed()
	w.SeedNft = w.seedNft()
	return w
}

// policy is the ownerwall policy: "only these accounts may connect to the
// service; everyone else is refused at once".
func (w *World) policy() string {
	var b strings.Builder
	b.Grow(w.N*80 + 4096)
	fmt.Fprintf(&b, "version: 1\noutbound: accept\nservices:\n  svc: {host: local, tcp: %d}\nrules:\n", Port)
	switch w.Shape {
	case ShapeA:
		for i := range w.N {
			fmt.Fprintf(&b, "  - {name: a%d, to: svc, who: [%s], action: accept}\n", i+1, accountName(i))
		}
	case ShapeB:
		for k := 1; k <= Slices; k++ {
			fmt.Fprintf(&b, "  - {name: b%d, to: svc, who: [%q], action: accept}\n", k, w.principal(k))
		}
	}
	b.WriteString("  - {name: everyone else, to: svc, action: reject}\n")
	return b.String()
}

// principal is shape B's rule k: a uid range or a group.
func (w *World) principal(k int) string {
	if k >= GroupFirst {
		return "group:" + groupName(k)
	}
	lo, hi := w.uidRange(k)
	return fmt.Sprintf("uid:%d-%d", lo, hi)
}

// uidRange is the uid interval of shape B's rule k (k < GroupFirst). An
// empty slice (N < 20) gets an interval no account has.
func (w *World) uidRange(k int) (int, int) {
	lo, hi := slice(w.N, k)
	if lo >= hi {
		return 900000 + k, 900000 + k
	}
	return accountUID(lo), accountUID(hi - 1)
}

// seed is the seed articles' method as iptables-restore input (IPv4, table
// filter): one owner rule per account (shape A) or per uid range / group
// (shape B), in OUTPUT, then the refusal. Every packet to the port walks
// the list until its uid matches.
func (w *World) seed() string {
	var b strings.Builder
	b.Grow(w.N*80 + 4096)
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	rule := func(match string) {
		fmt.Fprintf(&b, "-A OUTPUT -p tcp -m tcp --dport %d -m owner %s -j ACCEPT\n", Port, match)
	}
	switch w.Shape {
	case ShapeA:
		for i := range w.N {
			rule(fmt.Sprintf("--uid-owner %d", accountUID(i)))
		}
	case ShapeB:
		for k := 1; k <= Slices; k++ {
			if k >= GroupFirst {
				// --suppl-groups: the seed articles' --gid-owner alone
				// misses supplementary members, the client among them.
				rule(fmt.Sprintf("--gid-owner %d --suppl-groups", groupGID(k)))
				continue
			}
			lo, hi := w.uidRange(k)
			rule(fmt.Sprintf("--uid-owner %d-%d", lo, hi))
		}
	}
	fmt.Fprintf(&b, "-A OUTPUT -p tcp -m tcp --dport %d -j REJECT --reject-with tcp-reset\nCOMMIT\n", Port)
	return b.String()
}

// seedNft is the seed rules in nft syntax: what iptables-nft makes of
// `-p tcp -m tcp --dport P -m owner --uid-owner U -j ACCEPT` (protocol,
// port and uid comparisons, a counter, the verdict), for loading many of
// them in seconds instead of the minutes iptables-nft-restore takes.
func (w *World) seedNft() string {
	var b strings.Builder
	b.Grow(w.N*80 + 4096)
	b.WriteString("table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n")
	b.WriteString("\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy accept;\n\t}\n")
	b.WriteString("\tchain OUTPUT {\n\t\ttype filter hook output priority filter; policy accept;\n")
	rule := func(uid string) {
		fmt.Fprintf(&b, "\t\tmeta l4proto tcp tcp dport %d meta skuid %s counter accept\n", Port, uid)
	}
	switch w.Shape {
	case ShapeA:
		for i := range w.N {
			rule(fmt.Sprint(accountUID(i)))
		}
	case ShapeB:
		return "" // --gid-owner --suppl-groups has no native nft form
	}
	fmt.Fprintf(&b, "\t\tmeta l4proto tcp tcp dport %d counter reject with tcp reset\n\t}\n}\n", Port)
	return b.String()
}
