package e2e

import (
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestLocalCannotBeBypassed: a guard on a local service holds on every
// address of the host, both families, IPv4-mapped IPv6, the LAN addresses,
// and an address added after the policy was applied; for TCP and UDP.
func TestLocalCannotBeBypassed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - name: tunnels are root's
    to: {host: local, tcp: [992, 273], udp: 5353}
    except: [root]
    action: reject
`)
		b.use(&sc)
		sc.LateAddrs = []string{"198.18.77.7/32", "2001:db8:77::7/128"}
		var ex []lab.Expectation
		for _, addr := range append(localAddrs, "198.18.77.7", "[2001:db8:77::7]") {
			ex = append(ex,
				exp("tcp tunnel", "plebian", addr+":992/tcp", "reject"),
				exp("udp tunnel", "plebian", addr+":5353/udp", "reject"),
				exp("tcp tunnel", "root", addr+":992/tcp", "accept"),
				exp("udp tunnel", "root", addr+":5353/udp", "accept"),
			)
		}
		// a remote port 992 is not local: the guard does not apply
		for _, addr := range remoteAddrs {
			ex = append(ex, exp("remote 992", "plebian", addr+":992/tcp", "accept"))
		}
		netnstest.Expect(t, sc, ex)
	})
}
