package e2e

import (
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestHostsAndFamilies: a hostname covers all its A and AAAA records; an
// IPv4 CIDR does not touch IPv6 and the other way round; ports in lists and
// ranges.
func TestHostsAndFamilies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - {name: strudel telnet by name, to: {host: strudel, tcp: 992}, who: [plebian], action: reject}
  - {name: v4 web, to: {host: 198.18.0.0/24, tcp: 80}, who: [plebian], action: drop}
  - {name: v6 web, to: {host: "2001:db8:18::/64", tcp: 443}, who: [plebian], action: drop}
  - {name: udp range, to: {host: [` + lab.RemoteV4 + `, "` + lab.RemoteV6 + `"], udp: ["50-53"]}, who: [admin7], action: reject}
`)
		b.use(&sc)
		v4, v6 := lab.RemoteV4, "["+lab.RemoteV6+"]"
		ex := []lab.Expectation{
			exp("hostname, A", "plebian", v4+":992/tcp", "reject"),
			exp("hostname, AAAA", "plebian", v6+":992/tcp", "reject"),
			exp("v4 cidr", "plebian", v4+":80/tcp", "drop"),
			exp("v4 cidr is not v6", "plebian", v6+":80/tcp", "accept"),
			exp("v6 cidr", "plebian", v6+":443/tcp", "drop"),
			exp("v6 cidr is not v4", "plebian", v4+":443/tcp", "accept"),
			exp("udp range", "admin7", v4+":53/udp", "reject"),
			exp("udp range v6", "admin7", v6+":53/udp", "reject"),
			exp("outside range", "admin7", v4+":54/udp", "accept"),
			exp("other user", "admin7", v4+":992/tcp", "accept"),
		}
		netnstest.Expect(t, sc, ex)
	})
}
