package lab

import "fmt"

// SeedPolicy is the example policy of policy-v1.md: the two seed articles'
// tunnels, the web ban and the inbound-TCP rule.
const SeedPolicy = `version: 1

# What happens to an outbound connection that no rule decides.
outbound: accept

services:
  telnet-tunnel: {host: local, tcp: 992}   # Stunnel client listener
  rsync-tunnel:  {host: local, tcp: 273}

rules:
  - name: telnet tunnel is root's
    to: telnet-tunnel
    except: [root]
    action: reject

  - name: rsync tunnel is for wheel
    to: rsync-tunnel
    except: ["group:wheel"]
    action: reject

  - name: no web for ordinary users
    to: {tcp: [80, 443]}
    except: [root]
    action: drop

  - name: only root and wheel accept inbound TCP
    serve: {tcp: any}
    except: [root, "group:wheel"]
    action: reject
`

// SeedPasswd and SeedGroup are the seed world's accounts: admin7 is in
// wheel only as a supplementary group, as is root.
const (
	SeedPasswd = `root:x:0:0:root:/root:/bin/sh
plebian:x:1000:1000:Plebian User:/home/plebian:/bin/sh
admin7:x:1001:1001:Admin Seven:/home/admin7:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`
	SeedGroup = `root:x:0:
wheel:x:10:root,admin7
plebian:x:1000:
admin7:x:1001:
nogroup:x:65534:
`
)

// Expectation is one attempt and the outcome the policy promises.
type Expectation struct {
	Attempt
	Expect string
}

// LateAddr is added to the host after the policy is applied.
const LateAddr = "198.18.99.1"

// Seed returns the seed scenario and what each attempt must observe.
func Seed() (Scenario, []Expectation) {
	sc := Scenario{
		Passwd: SeedPasswd, Group: SeedGroup,
		PolicyName: "seed-policy.yaml", Policy: SeedPolicy,
		Remote:    true,
		LateAddrs: []string{LateAddr + "/32"},
		Listeners: []Listener{
			{Proto: "tcp", Port: 992, User: "root"}, // the Stunnel telnet tunnel
			{Proto: "tcp", Port: 273, User: "root"}, // the rsync tunnel
			{Proto: "tcp", Port: 8001, User: "plebian"},
			{Proto: "tcp", Port: 8002, User: "admin7"},
			{Proto: "tcp", Port: 8003, User: "root"},
			{Where: "remote", Proto: "tcp", Port: 80},
			{Where: "remote", Proto: "tcp", Port: 443},
			{Where: "remote", Proto: "tcp", Port: 992},
		},
	}
	local := []string{"127.0.0.1", "127.0.0.2", "[::1]", "[::ffff:127.0.0.1]", HostV4, "[" + HostV6 + "]", LateAddr}
	remote := []string{RemoteV4, "[" + RemoteV6 + "]"}
	users := []string{"root", "plebian", "admin7"}
	var ex []Expectation
	add := func(label string, a Attempt, expect string) {
		a.Label = label
		ex = append(ex, Expectation{Attempt: a, Expect: expect})
	}
	for _, u := range users {
		for _, addr := range local {
			telnet, rsync := "reject", "reject"
			if u == "root" {
				telnet = "accept"
			}
			if u != "plebian" {
				rsync = "accept"
			}
			add("telnet tunnel", Attempt{User: u, To: addr + ":992/tcp"}, telnet)
			add("rsync tunnel", Attempt{User: u, To: addr + ":273/tcp"}, rsync)
		}
		for _, addr := range remote {
			web := "drop"
			if u == "root" {
				web = "accept"
			}
			add("strudel web", Attempt{User: u, To: addr + ":80/tcp"}, web)
			add("strudel web", Attempt{User: u, To: addr + ":443/tcp"}, web)
			add("strudel telnet (not local)", Attempt{User: u, To: addr + ":992/tcp"}, "accept")
		}
	}
	add("rsync tunnel, plebian with wheel's gid (sg)", Attempt{User: "plebian", Gid: "10", To: "127.0.0.1:273/tcp"}, "reject")
	for _, addr := range []string{HostV4, "[" + HostV6 + "]"} {
		add("inbound to plebian's server", Attempt{From: "remote", To: addr + ":8001/tcp"}, "reject")
		add("inbound to admin7's server", Attempt{From: "remote", To: addr + ":8002/tcp"}, "accept")
		add("inbound to root's server", Attempt{From: "remote", To: addr + ":8003/tcp"}, "accept")
	}
	for _, e := range ex {
		sc.Attempts = append(sc.Attempts, e.Attempt)
	}
	return sc, ex
}

// Who names the attempt's actor for tables.
func (a Attempt) Who() string {
	switch {
	case a.From == "remote":
		return "strudel"
	case a.Gid != "":
		return fmt.Sprintf("%s (gid %s)", orRoot(a.User), a.Gid)
	}
	return orRoot(a.User)
}

func orRoot(u string) string {
	if u == "" {
		return "root"
	}
	return u
}
