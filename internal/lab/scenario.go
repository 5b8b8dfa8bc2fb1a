// Package lab builds throwaway worlds for proving policies against the real
// kernel: a network and mount namespace with private accounts, listeners
// run as real users, an optional remote host "strudel" behind a veth pair,
// and connection attempts made as real uids. Everything it creates vanishes
// with the namespaces; the host is left untouched.
package lab

// Scenario is one world, one policy and the attempts to make in it.
type Scenario struct {
	Passwd string `json:"passwd"` // passwd(5) text for the private /etc/passwd
	Group  string `json:"group"`
	Hosts  string `json:"hosts,omitempty"` // extra /etc/hosts lines

	PolicyName string `json:"policy_name"` // file name shown in messages
	Policy     string `json:"policy"`      // policy YAML
	// ApplyArgs are extra arguments to `ownerwall apply`.
	ApplyArgs []string `json:"apply_args,omitempty"`
	// IptablesFlavour, "legacy" or "nft", makes every iptables command of
	// the lab (the backend's, the scenario's) that flavour, whatever this
	// host's alternatives say.
	IptablesFlavour string `json:"iptables_flavour,omitempty"`

	Remote    bool       `json:"remote"`    // build strudel behind a veth pair
	Listeners []Listener `json:"listeners"` // started before the policy is applied
	// LateAddrs are added to lo after apply: `local` must cover them.
	LateAddrs []string `json:"late_addrs,omitempty"`
	// Units maps unit names to cgroup paths (relative to the cgroup2 root)
	// that the lab creates and that a stand-in systemctl reports.
	Units map[string]string `json:"units,omitempty"`
	// CgroupLayout, when set, mounts cgroup v2 in the lab's mount namespace
	// as a "unified" host has it (/sys/fs/cgroup) or a "hybrid" one
	// (/sys/fs/cgroup/unified), whatever this host does.
	CgroupLayout string `json:"cgroup_layout,omitempty"`
	// Files are written to the lab's directory, $DIR in commands.
	Files map[string]string `json:"files,omitempty"`
	// Setup commands run before the listeners start and the policy is
	// applied; AfterApply commands run after it, before the attempts. In
	// both, $SELF is the ownerwall binary and $DIR the lab's directory.
	Setup      [][]string `json:"setup,omitempty"`
	AfterApply [][]string `json:"after_apply,omitempty"`
	Attempts   []Attempt  `json:"attempts"`
	// TimeoutMS bounds each attempt's wait for an answer (default 400).
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

// Listener is a server: TCP accepts and writes a line, UDP echoes.
type Listener struct {
	Where string `json:"where"` // "local" (default) or "remote"
	Proto string `json:"proto"` // tcp or udp
	Port  int    `json:"port"`
	User  string `json:"user,omitempty"` // local listeners: the account (default root)
}

// Attempt is one connection attempt.
type Attempt struct {
	Label string `json:"label,omitempty"`
	From  string `json:"from,omitempty"` // "local" (default) or "remote"
	User  string `json:"user,omitempty"` // local: account to run as (default root)
	// UID runs the attempt as a bare uid with no account (gid the same,
	// no supplementary groups); it overrides User.
	UID int `json:"uid,omitempty"`
	// Gid, when set, runs the attempt with this primary group instead of
	// the account's and no supplementary groups: a process that carries a
	// group's gid without its account being a member (sg, setgid).
	Gid  string `json:"gid,omitempty"`
	Unit string `json:"unit,omitempty"` // run inside this unit's cgroup
	To   string `json:"to"`             // ADDR:PORT/PROTO, IPv6 in brackets
	// SrcPort binds the attempt's local port (UDP serve tests).
	SrcPort int `json:"src_port,omitempty"`
}

// Report is what a lab run saw.
type Report struct {
	RulesetBefore string   `json:"ruleset_before"` // after Setup, before apply
	ApplyError    string   `json:"apply_error,omitempty"`
	Steps         []Step   `json:"steps,omitempty"` // AfterApply, in order
	Results       []Result `json:"results"`
	Ruleset       string   `json:"ruleset"`
}

// Result is one attempt's observed outcome: accept (connected, or a UDP
// answer came back), reject (refused at once: TCP reset or ICMP
// unreachable), drop (no answer within the timeout) or error.
type Result struct {
	Attempt  Attempt `json:"attempt"`
	Observed string  `json:"observed"`
	Detail   string  `json:"detail,omitempty"`
}

// Addresses of the lab's world.
const (
	HostV4    = "198.18.0.1"
	HostV6    = "2001:db8:18::1"
	RemoteV4  = "198.18.0.2"
	RemoteV6  = "2001:db8:18::2"
	RemoteDNS = "strudel"
)

// Step is one AfterApply command's outcome, with the ruleset right after it.
type Step struct {
	Cmd     []string `json:"cmd"`
	Exit    int      `json:"exit"`
	Output  string   `json:"output"`
	Ruleset string   `json:"ruleset"`
}
