package e2e

import (
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestUnitPrincipals: unit:NAME matches the processes in that systemd
// unit's cgroup v2, whoever they run as, on a unified host (cgroup2 at
// /sys/fs/cgroup) and a hybrid one (/sys/fs/cgroup/unified). A stand-in
// systemctl reports the units' cgroups.
func TestUnitPrincipals(t *testing.T) {
	for _, layout := range []string{"unified", "hybrid"} {
		t.Run(layout, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backendCase) {
				sc := world(`version: 1
rules:
  - {name: stunnel may reach the tunnel, to: {host: local, tcp: 992}, who: ["unit:stunnel.service"], action: accept}
  - {name: the tunnel is stunnel's, to: {host: local, tcp: 992}, action: reject}
  - {name: backup runs web-free, to: {tcp: 80}, who: ["unit:backup.service"], except: [root], action: drop}
`)
				b.use(&sc)
				sc.CgroupLayout = layout
				sc.Units = map[string]string{
					"stunnel.service": "system.slice/stunnel.service",
					"backup.service":  "system.slice/backup.service",
				}
				in := func(unit, user, to, expect string) lab.Expectation {
					return lab.Expectation{Attempt: lab.Attempt{Label: "in " + unit, Unit: unit, User: user, To: to}, Expect: expect}
				}
				ex := []lab.Expectation{
					in("stunnel.service", "plebian", "127.0.0.1:992/tcp", "accept"),
					in("stunnel.service", "root", "[::1]:992/tcp", "accept"),
					exp("outside the unit", "plebian", "127.0.0.1:992/tcp", "reject"),
					exp("outside the unit", "root", "[::1]:992/tcp", "reject"),
					in("backup.service", "plebian", lab.RemoteV4+":80/tcp", "drop"),
					in("backup.service", "root", lab.RemoteV4+":80/tcp", "accept"),
					in("backup.service", "plebian", "127.0.0.1:992/tcp", "reject"),
					exp("outside backup", "plebian", lab.RemoteV4+":80/tcp", "accept"),
				}
				netnstest.Expect(t, sc, ex)
			})
		})
	}
}

// TestUnitRestart: a restarted unit has a new cgroup (same path, new
// inode), which the kernel's rule, resolved at load, does not match; the
// next apply must load the rules again, not take them for unchanged and
// update uid elements only.
func TestUnitRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendCase) {
		sc := world(`version: 1
rules:
  - {name: stunnel may reach the tunnel, to: {host: local, tcp: 992}, who: ["unit:stunnel.service"], action: accept}
  - {name: the tunnel is stunnel's, to: {host: local, tcp: 992}, action: reject}
`)
		b.use(&sc)
		sc.PolicyName = "policy.yaml"
		sc.Units = map[string]string{"stunnel.service": "system.slice/stunnel.service"}
		restart := `cg=$(systemctl show --property=ControlGroup --value -- stunnel.service)
for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
  [ -d "$root$cg" ] || continue
  self=$0 dir=$1; shift
  rmdir "$root$cg" && mkdir "$root$cg" && exec "$self" apply -f "$dir/policy.yaml" "$@"
done
echo "no cgroup $cg"; exit 1`
		sc.AfterApply = [][]string{append([]string{"sh", "-c", restart, "$SELF", "$DIR"}, sc.ApplyArgs...)}
		rep := netnstest.Expect(t, sc, []lab.Expectation{
			{Attempt: lab.Attempt{Label: "in the restarted unit", Unit: "stunnel.service", User: "plebian", To: "127.0.0.1:992/tcp"}, Expect: "accept"},
			exp("outside the unit", "plebian", "127.0.0.1:992/tcp", "reject"),
		})
		requireExits(t, rep, 0)
	})
}
