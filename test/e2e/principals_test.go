package e2e

import (
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestGroupMembership: a group is its members by account: primary and
// supplementary members both; a non-member whose process carries the
// group's gid (sg, newgrp, a setgid program) is not a member. The same for
// group:NAME and gid:N.
func TestGroupMembership(t *testing.T) {
	for _, ref := range []string{"group:wheel", "gid:10"} {
		t.Run(ref, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backendCase) {
				sc := world(`version: 1
rules:
  - {name: wheel keeps off 273, to: {host: local, tcp: 273}, who: ["` + ref + `"], action: reject}
  - {name: only wheel on 992, to: {host: local, tcp: 992}, except: ["` + ref + `"], action: reject}
`)
				b.use(&sc)
				sg := lab.Expectation{Attempt: lab.Attempt{Label: "plebian with wheel's gid", User: "plebian", Gid: "10", To: "127.0.0.1:273/tcp"}, Expect: "accept"}
				sg992 := sg
				sg992.To, sg992.Expect = "[::1]:992/tcp", "reject"
				ex := []lab.Expectation{
					exp("supplementary member", "admin7", "127.0.0.1:273/tcp", "reject"),
					exp("primary member", "wheelie", "127.0.0.1:273/tcp", "reject"),
					exp("non-member", "plebian", "127.0.0.1:273/tcp", "accept"),
					exp("supplementary member, except", "admin7", "[::1]:992/tcp", "accept"),
					exp("primary member, except", "wheelie", "[::1]:992/tcp", "accept"),
					exp("non-member, except", "plebian", "[::1]:992/tcp", "reject"),
					sg, sg992,
				}
				netnstest.Expect(t, sc, ex)
			})
		})
	}
}

// TestUIDRanges: uid ranges are inclusive and need no account.
func TestUIDRanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - {name: rangers off the tunnel, to: {host: local, tcp: 992}, who: ["uid:2000-2999"], action: reject}
  - {name: one bare uid, to: {host: local, tcp: 273}, who: ["uid:4242"], action: drop}
`)
		b.use(&sc)
		bare := func(uid int, to, expect string) lab.Expectation {
			return lab.Expectation{Attempt: lab.Attempt{Label: "uid without account", UID: uid, To: to}, Expect: expect}
		}
		ex := []lab.Expectation{
			exp("low end", "ranger", "127.0.0.1:992/tcp", "reject"),
			exp("high end", "ranger2", "127.0.0.1:992/tcp", "reject"),
			exp("just above", "outsider", "127.0.0.1:992/tcp", "accept"),
			bare(2500, "127.0.0.1:992/tcp", "reject"),
			bare(1999, "127.0.0.1:992/tcp", "accept"),
			bare(4242, "127.0.0.1:273/tcp", "drop"),
			bare(4243, "127.0.0.1:273/tcp", "accept"),
		}
		netnstest.Expect(t, sc, ex)
	})
}
