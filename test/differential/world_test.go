// Package differential proves that explain's verdict is what the kernel
// does: it generates random policies over one fixed world (seeded,
// reproducible), asks explain about random connection attempts, applies each
// policy in a throwaway lab with a real backend, makes the attempts as real
// uids, and compares. A mismatch is confirmed in a fresh lab, classified
// against a reference model of the docs (reference_test.go), and shrunk to
// the smallest policy that still reproduces it.
//
//	go test -count=1 ./test/differential/ -v                  # 100 policies x 32 attempts, nft and iptables-nft
//	go test ./test/differential/ -run TestDifferential -seed N -only I   # policy I of seed N
//	OWNERWALL_DIFF_SEED=N go test ./test/differential/
//	go test ./test/differential/ -backends nft,iptables-nft,iptables-legacy
//	go test -short ./test/differential/                       # no kernel: generator and reference model only
//
// Files: world (accounts, listeners, addresses), gen (policies and
// attempts), oracle (explain's prediction and what a client observes),
// reference (the docs' meaning, without the IR), shrink, pinned (shrunk
// past mismatches, run every time).
package differential

import (
	"net/netip"

	"github.com/ownerwall/ownerwall/internal/explain"
	"github.com/ownerwall/ownerwall/internal/lab"
)

// The fixed world. Groups have primary and supplementary members:
//
//	staff (100): primary of carol and frank, supplementary for alice, dave
//	wheel (10):  supplementary only: bob, erin
//	ops (300):   primary of erin, no member list
//	gid 400:     no group entry; primary gid of gina (gid:400 means her)
//
// uids 1500, 3000, 4242, 70000 and 4294967294 have no account: attempts run them as
// bare uids (lab.Attempt.UID), and 4242 owns a listener.
const (
	passwd = `root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000::/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
carol:x:1002:100::/home/carol:/bin/sh
dave:x:1003:1003::/home/dave:/bin/sh
erin:x:2000:300::/home/erin:/bin/sh
frank:x:2500:100::/home/frank:/bin/sh
gina:x:2600:400::/home/gina:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`
	group = `root:x:0:
wheel:x:10:bob,erin
staff:x:100:alice,dave
ops:x:300:
alice:x:1000:
bob:x:1001:
dave:x:1003:
nogroup:x:65534:
`
)

// accountUIDs are the accounts attempts run as, by name.
var accountUIDs = map[string]uint32{
	"root": 0, "alice": 1000, "bob": 1001, "carol": 1002, "dave": 1003,
	"erin": 2000, "frank": 2500, "gina": 2600, "nobody": 65534,
}

var accountNames = []string{"root", "alice", "bob", "carol", "dave", "erin", "frank", "gina", "nobody"}

// bareUIDs have no account.
// 4294967294 is the highest uid a process can have ((uid_t)-1 is none).
var bareUIDs = []int{1500, 3000, 4242, 70000, 4294967294}

// srcPortPool are the local ports attempts may send from: no local
// listener holds them.
var srcPortPool = []int{portLo, portHi}

// The port universe. Local listeners exist on 7001-7005 (tcp and udp, each
// owned by someone else), 7000 and 7006 are closed here; strudel's are
// below. 8100 and up are only list filler.
const (
	portLo = 7000
	portHi = 7006
)

// localListeners: port/proto -> owner (an account name, or a bare uid).
var localListeners = []lab.Listener{
	{Proto: "tcp", Port: 7001, User: "alice"},
	{Proto: "tcp", Port: 7002, User: "carol"},
	{Proto: "tcp", Port: 7003, User: "root"},
	{Proto: "tcp", Port: 7004, User: "dave"},
	{Proto: "tcp", Port: 7005, User: "4242"},
	{Proto: "udp", Port: 7001, User: "bob"},
	{Proto: "udp", Port: 7002, User: "frank"},
	{Proto: "udp", Port: 7003, User: "root"},
	{Proto: "udp", Port: 7004, User: "erin"},
	{Proto: "udp", Port: 7005, User: "alice"},
}

// Strudel listens on tcp 7001-7004 (a closed port answers with a reset)
// and on every udp port of the universe: strudel's kernel rate-limits its
// ICMP port unreachables, so a burst of datagrams to closed ports there
// would see some of them unanswered.
var remoteTCPPorts = []int{7001, 7002, 7003, 7004}

func listeners() []lab.Listener {
	out := append([]lab.Listener(nil), localListeners...)
	for _, p := range remoteTCPPorts {
		out = append(out, lab.Listener{Where: "remote", Proto: "tcp", Port: p})
	}
	for p := portLo; p <= portHi; p++ {
		out = append(out, lab.Listener{Where: "remote", Proto: "udp", Port: p})
	}
	return out
}

// localOwner returns the uid owning the local listener on port/proto.
func localOwner(proto string, port int) (uint32, bool) {
	for _, l := range localListeners {
		if l.Proto == proto && l.Port == port {
			if u, ok := accountUIDs[l.User]; ok {
				return u, true
			}
			var n uint32
			for _, c := range l.User {
				n = n*10 + uint32(c-'0')
			}
			return n, true
		}
	}
	return 0, false
}

func remoteListens(proto string, port int) bool {
	if proto == "udp" {
		return port >= portLo && port <= portHi
	}
	for _, p := range remoteTCPPorts {
		if p == port {
			return true
		}
	}
	return false
}

// Every way to name this host, and strudel, as an attempt writes them.
var (
	localAddrs = []string{
		"127.0.0.1", "127.0.0.2", "127.3.4.5", "::1", "::ffff:127.0.0.1",
		lab.HostV4, lab.HostV6, "::ffff:" + lab.HostV4,
	}
	remoteAddrs = []string{lab.RemoteV4, lab.RemoteV6, "::ffff:" + lab.RemoteV4}
	// inboundAddrs: how strudel names this host.
	inboundAddrs = []string{lab.HostV4, lab.HostV6, "::ffff:" + lab.HostV4}
)

// hostNames resolve in the lab through its /etc/hosts, and in explain
// through ident.Static.
var hostNames = map[string][]netip.Addr{
	lab.RemoteDNS: {netip.MustParseAddr(lab.RemoteV4), netip.MustParseAddr(lab.RemoteV6)},
	"localhost":   {netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()},
	"myself":      {netip.MustParseAddr(lab.HostV4)},
}

// extraHosts are the /etc/hosts lines the lab adds to its own.
const extraHosts = lab.HostV4 + " myself\n"

// isLocal answers as the lab host's kernel does: 127.0.0.0/8, ::1 and the
// addresses of its interface towards strudel.
var isLocal explain.LocalFunc = func(a netip.Addr) bool {
	a = a.Unmap()
	return netip.MustParsePrefix("127.0.0.0/8").Contains(a) || a == netip.IPv6Loopback() ||
		a == netip.MustParseAddr(lab.HostV4) || a == netip.MustParseAddr(lab.HostV6)
}
