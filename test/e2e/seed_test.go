package e2e

import (
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestSeedScenarios is the demo: the spec's example policy, every local
// address including one added after apply, IPv4 and IPv6, a supplementary
// wheel member, a non-member carrying wheel's gid, a remote host, and
// inbound connections to servers of three owners.
func TestSeedScenarios(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc, ex := lab.Seed()
		sc.Attempts = nil
		b.use(&sc)
		for i := range ex {
			if ex[i].From == "remote" && ex[i].Expect == "reject" {
				ex[i].Expect = b.serveRejectSeen()
			}
		}
		netnstest.Expect(t, sc, ex)
	})
}
