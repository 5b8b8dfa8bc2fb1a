package e2e

import (
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestRejectAndDrop: reject refuses at once (TCP reset, ICMP port
// unreachable for UDP); drop is silent.
func TestRejectAndDrop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - {name: tcp 80 rejected, to: {host: strudel, tcp: 80}, who: [plebian], action: reject}
  - {name: tcp 443 dropped, to: {host: strudel, tcp: 443}, who: [plebian], action: drop}
  - {name: udp 53 rejected, to: {host: strudel, udp: 53}, who: [plebian], action: reject}
  - {name: udp 54 dropped, to: {host: strudel, udp: 54}, who: [plebian], action: drop}
`)
		b.use(&sc)
		var ex []lab.Expectation
		for _, addr := range remoteAddrs {
			ex = append(ex,
				exp("reject", "plebian", addr+":80/tcp", "reject"),
				exp("drop", "plebian", addr+":443/tcp", "drop"),
				exp("reject", "plebian", addr+":53/udp", "reject"),
				exp("drop", "plebian", addr+":54/udp", "drop"),
				exp("not plebian", "admin7", addr+":80/tcp", "accept"),
				exp("not plebian", "admin7", addr+":443/tcp", "accept"),
				exp("not plebian", "admin7", addr+":53/udp", "accept"),
				exp("not plebian", "admin7", addr+":54/udp", "accept"),
			)
		}
		netnstest.Expect(t, sc, ex)
	})
}

// TestFirstMatchDecides: rules are read top to bottom; an earlier accept
// wins over a later reject for the same packet, and a later rule still
// decides what the earlier one does not match.
func TestFirstMatchDecides(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - {name: admin7 may use web, to: {tcp: 80}, who: [admin7], action: accept}
  - {name: no web, to: {tcp: [80, 443]}, except: [root], action: reject}
`)
		b.use(&sc)
		var ex []lab.Expectation
		for _, addr := range remoteAddrs {
			ex = append(ex,
				exp("earlier accept", "admin7", addr+":80/tcp", "accept"),
				exp("later reject", "admin7", addr+":443/tcp", "reject"),
				exp("later reject", "plebian", addr+":80/tcp", "reject"),
				exp("except root", "root", addr+":443/tcp", "accept"),
			)
		}
		netnstest.Expect(t, sc, ex)
	})
}
