// Package nssblind runs a command that must not see the host's accounts:
// nft and iptables-restore parse every uid with getpwnam() before they try
// it as a number, and glibc answers each call by reading the whole passwd
// file (and asking LDAP, SSSD or systemd-userdb), so with 100,000 accounts
// loading 100,000 uids takes minutes. The command runs in a private mount
// namespace where /etc/passwd and /etc/group are empty, nscd's socket is
// not one, and nsswitch.conf names a source that does not exist, so every
// lookup fails at once without a system call. Measured for 100,000 uid
// elements: 0.62-0.79 s this way; 1.18 s with "files" (an open, a read and
// a close of the empty file per uid); 1.67 s with an empty nsswitch.conf.
// A line with an action and no source ("passwd: [NOTFOUND=return]") was
// faster still, and made nft 1.0.6 crash on 100,000 elements: not that.
//
// The namespace is made for one OS thread of ownerwall (Do), which then
// starts the command: no unshare(1), no shell, no mount(1).
package nssblind

// nsswitch makes glibc look for libnss_ownerwallnone.so.2 once, fail,
// and answer every later lookup "unavailable" without a system call.
const nsswitch = "passwd: ownerwallnone\ngroup: ownerwallnone\nshadow: ownerwallnone\n"
