// Package iptables renders the ruleset for iptables-restore and
// ip6tables-restore (table filter, `--noflush`), and loads it with whichever
// flavour (legacy or nf_tables) the binaries found in PATH are.
//
// Known difference from the nft backend: a `serve` TCP rule with action
// reject. nft rewrites the listener's SYN-ACK into RST|ACK, so the remote
// client is refused at once. xtables has no target that does that: REJECT
// --reject-with tcp-reset, which this backend uses, sends the reset back to
// the local listener, so the remote client is not told anything and times
// out, exactly as with drop. The listener's process is still refused (its
// half-open connection is reset), and the rule's counter and log work.
//
// Everything else decides the same packets the same way as the nft backend
// (same IR, same order of rules, same verdicts). How:
//
//   - ownerwall's rules live in its own chains, all named OWNERWALL or
//     OWNERWALL-*, entered by one `-A OUTPUT -j OWNERWALL` at the top of
//     OUTPUT. Every other chain and rule is left alone: re-applying replaces
//     only ownerwall's chains, flushing removes only them and the jump.
//   - "accept" is rendered as RETURN, not ACCEPT: the nft backend accepts in
//     its own table, which does not stop other tables (firewalld, ufw,
//     Docker, a hand-written ruleset) from seeing the packet. ACCEPT would
//     skip every OUTPUT rule after ownerwall's jump; RETURN leaves ownerwall
//     and lets the rest of OUTPUT decide, as the nft table does. drop and
//     reject are final in both backends.
//   - Packets without a socket (kernel RSTs, ICMP errors) leave ownerwall
//     first: nft's `meta skuid` does not match them, whereas xtables'
//     `! --uid-owner` would.
//   - xtables has no uid maps: the uid dispatch is a balanced binary tree of
//     `-m owner --uid-owner LO-HI -g CHAIN` rules, so a packet passes
//     O(log n) rules, whose leaves go to the profile chains OWNERWALL-P<n>.
//   - Units: `-m cgroup --path PATH` (xt_cgroup, cgroup v2), in front of the
//     unit's own uid tree. The kernel resolves PATH against the cgroup v2
//     root when the rule is loaded, wherever cgroup2 is mounted (unified or
//     hybrid hosts alike), so the unit's cgroup must exist then, as for nft;
//     if the unit is restarted (its cgroup removed and created again) the
//     rule keeps matching the old, dead cgroup until the next apply.
//   - Host lists are expanded to one rule per network (no ipset), and port
//     lists to `-m multiport` rules of at most 15 ports each.
//   - Log prefixes are limited by xt_LOG to 29 bytes: "ownerwall rule N "
//     and as much of the rule's name as fits. The full name is in the
//     rule's comment.
package iptables
