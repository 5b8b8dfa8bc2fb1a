package e2e

import (
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

func serveWorld(policy string) lab.Scenario {
	sc := world(policy)
	sc.Listeners = append(sc.Listeners,
		lab.Listener{Proto: "tcp", Port: 8001, User: "plebian"},
		lab.Listener{Proto: "tcp", Port: 8002, User: "admin7"},
		lab.Listener{Proto: "udp", Port: 8001, User: "plebian"},
		lab.Listener{Proto: "udp", Port: 8002, User: "admin7"},
	)
	return sc
}

func inbound(label, to, expect string) lab.Expectation {
	return lab.Expectation{Attempt: lab.Attempt{Label: label, From: "remote", To: to}, Expect: expect}
}

// TestServeRules: serve governs accepting inbound TCP (through the owner
// of the listener's SYN-ACK) and sending UDP from a local port. A refused
// TCP client is refused at once; a UDP client whose server may not answer
// hears nothing.
func TestServeRules(t *testing.T) {
	for _, outbound := range []string{"accept", "drop"} {
		t.Run("outbound "+outbound, func(t *testing.T) {
			testServe(t, outbound)
		})
	}
}

// testServe with outbound: drop is the ordering trap: the SYN-ACK is a
// reply in conntrack's eyes, so a serve rule placed after the
// ESTABLISHED,RELATED shortcut would never fire.
func testServe(t *testing.T, outbound string) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := serveWorld(`version: 1
outbound: ` + outbound + `
rules:
  - {name: plebian serves no tcp, serve: {tcp: any}, who: [plebian], action: reject}
  - {name: plebian serves no udp 8001, serve: {udp: 8001}, who: [plebian], action: drop}
  - {name: everyone may connect, to: {host: any}, action: accept}
`)
		b.use(&sc)
		var ex []lab.Expectation
		for _, host := range []string{lab.HostV4, "[" + lab.HostV6 + "]"} {
			ex = append(ex,
				inbound("plebian's tcp server", host+":8001/tcp", b.serveRejectSeen()),
				inbound("admin7's tcp server", host+":8002/tcp", "accept"),
				inbound("root's tcp server", host+":992/tcp", "accept"),
				inbound("plebian's udp server", host+":8001/udp", "drop"),
				inbound("admin7's udp server", host+":8002/udp", "accept"),
			)
		}
		// Local clients too: the listener's SYN-ACK leaves through lo.
		ex = append(ex,
			exp("local client, plebian's server", "admin7", "127.0.0.1:8001/tcp", b.serveRejectSeen()),
			exp("local client, admin7's server", "plebian", "[::1]:8002/tcp", "accept"),
			exp("plebian connecting out is not serving", "plebian", lab.RemoteV4+":80/tcp", "accept"),
		)
		netnstest.Expect(t, sc, ex)
	})
}

// TestServerAnswersAreNotConnections: "plebian may send no UDP" stops the
// datagrams plebian's processes start flows with, not the answers of
// plebian's UDP server, with outbound accept as with drop.
func TestServerAnswersAreNotConnections(t *testing.T) {
	for _, outbound := range []string{"accept", "drop"} {
		t.Run("outbound "+outbound, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backendCase) {
				sc := serveWorld(`version: 1
outbound: ` + outbound + `
rules:
  - {name: plebian sends no udp, to: {udp: any}, who: [plebian], action: drop}
  - {name: others may, to: {host: any}, except: [plebian], action: accept}
`)
				b.use(&sc)
				ex := []lab.Expectation{
					exp("plebian starts a flow", "plebian", lab.RemoteV4+":53/udp", "drop"),
					exp("plebian starts a flow, v6", "plebian", "["+lab.RemoteV6+"]:53/udp", "drop"),
					inbound("plebian's server answers", lab.HostV4+":8001/udp", "accept"),
					inbound("plebian's server answers, v6", "["+lab.HostV6+"]:8001/udp", "accept"),
					exp("a local client of plebian's server", "admin7", "127.0.0.1:8001/udp", "accept"),
				}
				netnstest.Expect(t, sc, ex)
			})
		})
	}
}
