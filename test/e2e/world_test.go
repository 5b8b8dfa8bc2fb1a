// Package e2e proves ownerwall's enforcement claims against the real
// kernel: every test builds a throwaway world (network and mount
// namespaces, private accounts, real listeners, a remote host over veth),
// applies a policy with the real binary and connects as real uids.
package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// The accounts every test world has. admin7 is in wheel as a supplementary
// group, wheelie by its primary group; plebian in neither.
const (
	passwd = `root:x:0:0:root:/root:/bin/sh
plebian:x:1000:1000::/home/plebian:/bin/sh
admin7:x:1001:1001::/home/admin7:/bin/sh
wheelie:x:1002:10::/home/wheelie:/bin/sh
ranger:x:2000:2000::/home/ranger:/bin/sh
ranger2:x:2999:2999::/home/ranger2:/bin/sh
outsider:x:3000:3000::/home/outsider:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`
	group = `root:x:0:
wheel:x:10:admin7
plebian:x:1000:
admin7:x:1001:
ranger:x:2000:
ranger2:x:2999:
outsider:x:3000:
nogroup:x:65534:
`
)

// backendCase is one way a policy can be applied.
type backendCase struct {
	name    string
	args    []string // for ownerwall apply
	flavour string   // iptables flavour the lab uses
}

// use makes the scenario apply with this backend.
func (b backendCase) use(sc *lab.Scenario) {
	sc.ApplyArgs = b.args
	sc.IptablesFlavour = b.flavour
}

// backends: every kernel test runs on each of them.
var backends = []backendCase{
	{name: "nft"},
	{name: "iptables-nft", args: []string{"--backend", "iptables"}, flavour: "nft"},
	{name: "iptables-legacy", args: []string{"--backend", "iptables"}, flavour: "legacy"},
}

// world returns a scenario with the common accounts, the remote host, and
// the listeners most tests use: root's tunnels on 992 and 273 (tcp) and
// 5353 (udp) here, and tcp 80, 443, 992 and udp 53, 54 on strudel.
func world(policy string) lab.Scenario {
	return lab.Scenario{
		Passwd: passwd, Group: group, Remote: true,
		PolicyName: "policy.yaml", Policy: policy,
		Listeners: []lab.Listener{
			{Proto: "tcp", Port: 992}, {Proto: "tcp", Port: 273}, {Proto: "udp", Port: 5353},
			{Where: "remote", Proto: "tcp", Port: 80}, {Where: "remote", Proto: "tcp", Port: 443},
			{Where: "remote", Proto: "tcp", Port: 992},
			{Where: "remote", Proto: "udp", Port: 53}, {Where: "remote", Proto: "udp", Port: 54},
		},
	}
}

// localAddrs are every way to name this host: a guard on "local" must hold
// on each.
var localAddrs = []string{"127.0.0.1", "127.0.0.2", "127.1.2.3", "[::1]", "[::ffff:127.0.0.1]", lab.HostV4, "[" + lab.HostV6 + "]"}

var remoteAddrs = []string{lab.RemoteV4, "[" + lab.RemoteV6 + "]"}

func exp(label, user, to, expect string) lab.Expectation {
	return lab.Expectation{Attempt: lab.Attempt{Label: label, User: user, To: to}, Expect: expect}
}

// forEachBackend runs f as a subtest per backend, with the scenario's apply
// arguments set.
func forEachBackend(t *testing.T, f func(t *testing.T, b backendCase)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("kernel test: not in -short")
			}
			netnstest.RequireRoot(t)
			f(t, b)
		})
	}
}

// tableBlock extracts `table FAMILY NAME { ... }` from an nft listing.
func tableBlock(ruleset, family, name string) string {
	head := "table " + family + " " + name + " {"
	i := strings.Index(ruleset, head)
	if i < 0 {
		return ""
	}
	rest := ruleset[i:]
	if j := strings.Index(rest, "\n}\n"); j >= 0 {
		return rest[:j+3]
	}
	return rest
}

// loaded reports whether ownerwall's ruleset is in the lab's listing.
func (b backendCase) loaded(ruleset string) bool { return b.instances(ruleset) > 0 }

// instances counts ownerwall rulesets in a listing: nft tables, or jumps
// from OUTPUT per family for iptables (one per family when loaded).
func (b backendCase) instances(ruleset string) int {
	if b.name == "nft" {
		return strings.Count(ruleset, "table inet ownerwall {")
	}
	return strings.Count(ruleset, "-A OUTPUT -j OWNERWALL") / 2
}

// handEdit changes ownerwall's live ruleset behind its back.
func (b backendCase) handEdit() []string {
	if b.name == "nft" {
		return []string{"nft", "add rule inet ownerwall output tcp dport 4444 drop"}
	}
	return []string{"iptables", "-I", "OWNERWALL", "-p", "tcp", "--dport", "4444", "-j", "DROP"}
}

// wipe removes every rule from the kernel, as a reboot does.
func (b backendCase) wipe() []string {
	if b.name == "nft" {
		return []string{"nft", "delete table inet ownerwall"}
	}
	return []string{"sh", "-c", "iptables -F && iptables -X && ip6tables -F && ip6tables -X"}
}

// serveRejectSeen is what a remote client sees when a serve rule rejects
// its connection: nft turns the SYN-ACK into a reset; xtables can only
// send the reset to the local listener, so the client times out.
func (b backendCase) serveRejectSeen() string {
	if b.name == "nft" {
		return "reject"
	}
	return "drop"
}

// replyShortcut is how the ESTABLISHED,RELATED shortcut reads in a listing.
func (b backendCase) replyShortcut() string {
	if b.name == "nft" {
		return "ct state established,related"
	}
	return "--ctstate RELATED,ESTABLISHED"
}

// listShell is a shell pipeline printing ownerwall's live ruleset without
// counters.
func (b backendCase) listShell() string {
	if b.name == "nft" {
		return `nft list table inet ownerwall 2>/dev/null | sed -E 's/packets [0-9]+ bytes [0-9]+//'`
	}
	return `{ iptables-save -t filter; ip6tables-save -t filter; } 2>/dev/null | grep OWNERWALL | sed -E 's/\[[0-9]+:[0-9]+\]//'`
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
