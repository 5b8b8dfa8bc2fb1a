package e2e

import (
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestOutboundDrop: with outbound: drop, what no rule accepts is dropped;
// replies of accepted connections pass (a full exchange proves it); the
// ESTABLISHED,RELATED shortcut never lets a NEW connection through; and
// IPv6 neighbour discovery keeps working after the neighbour cache is
// flushed, though ND's socket belongs to root, whom no rule lets out.
func TestOutboundDrop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
outbound: drop
rules:
  - {name: admin7 may browse, to: {host: strudel, tcp: 80}, who: [admin7], action: accept}
  - {name: admin7 may resolve, to: {host: strudel, udp: 53}, who: [admin7], action: accept}
  - {name: plebian may use the tunnel, to: {host: local, tcp: 992}, who: [plebian], action: accept}
`)
		b.use(&sc)
		sc.AfterApply = [][]string{
			{"ip", "-6", "neigh", "flush", "dev", "owlan"},
			{"ip", "neigh", "flush", "dev", "owlan"},
		}
		var ex []lab.Expectation
		for _, addr := range remoteAddrs {
			ex = append(ex,
				exp("allowed, replies pass", "admin7", addr+":80/tcp", "accept"),
				exp("allowed udp, replies pass", "admin7", addr+":53/udp", "accept"),
				exp("not allowed: NEW never passes", "admin7", addr+":443/tcp", "drop"),
				exp("not allowed udp", "admin7", addr+":54/udp", "drop"),
				exp("nobody allowed root", "root", addr+":80/tcp", "drop"),
				exp("nobody allowed plebian", "plebian", addr+":80/tcp", "drop"),
			)
		}
		// The tunnel's listener is root's, whom no rule lets out: its
		// SYN-ACK is a reply and passes.
		ex = append(ex,
			exp("allowed local", "plebian", "127.0.0.1:992/tcp", "accept"),
			exp("allowed local v6", "plebian", "[::1]:992/tcp", "accept"),
			exp("not allowed local", "plebian", "127.0.0.1:273/tcp", "drop"),
			exp("not allowed local", "admin7", "127.0.0.1:992/tcp", "drop"),
		)
		rep := netnstest.Expect(t, sc, ex)
		if !strings.Contains(rep.Ruleset, b.replyShortcut()) {
			t.Errorf("outbound drop needs the conntrack shortcut, the ruleset has none:\n%s", rep.Ruleset)
		}
	})
}

// TestOutboundReject: what no rule decides is refused at once.
func TestOutboundReject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
outbound: reject
rules:
  - {name: root may go anywhere, who: [root], to: {host: any}, action: accept}
`)
		b.use(&sc)
		var ex []lab.Expectation
		for _, addr := range remoteAddrs {
			ex = append(ex,
				exp("default reject tcp", "plebian", addr+":80/tcp", "reject"),
				exp("default reject udp", "plebian", addr+":53/udp", "reject"),
				exp("root accepted", "root", addr+":80/tcp", "accept"),
				exp("root accepted udp", "root", addr+":53/udp", "accept"),
			)
		}
		ex = append(ex, exp("default reject local", "plebian", "[::1]:992/tcp", "reject"))
		netnstest.Expect(t, sc, ex)
	})
}

// TestOutboundAcceptNeedsNoConntrack: the default policy loads no
// conntrack expression (registering conntrack costs new-connection rate).
func TestOutboundAcceptNeedsNoConntrack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc, ex := lab.Seed()
		sc.Attempts = nil
		b.use(&sc)
		rep := netnstest.Expect(t, sc, ex[:4])
		if strings.Contains(rep.Ruleset, "ct state") || strings.Contains(rep.Ruleset, "conntrack") {
			t.Errorf("outbound: accept loaded a conntrack match:\n%s", rep.Ruleset)
		}
	})
}
