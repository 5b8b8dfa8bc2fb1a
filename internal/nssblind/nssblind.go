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
package nssblind

import (
	"fmt"
	"os"
)

// nsswitch makes glibc look for libnss_ownerwallnone.so.2 once, fail,
// and answer every later lookup "unavailable" without a system call.
const nsswitch = "passwd: ownerwallnone\ngroup: ownerwallnone\nshadow: ownerwallnone\n"

// Command returns the argv that runs the shell code body, with args as
// "$@", blind to the account database; flags are extra unshare(1) flags
// (--net for a scratch network namespace). cleanup removes the temporary
// nsswitch.conf; call it when the command has ended.
func Command(flags []string, body string, args ...string) (argv []string, cleanup func(), err error) {
	f, err := os.CreateTemp("", "ownerwall-nsswitch-*.conf")
	if err != nil {
		return nil, nil, fmt.Errorf("nsswitch for a blind command: %w", err)
	}
	name := f.Name()
	cleanup = func() { os.Remove(name) }
	if _, err := f.WriteString(nsswitch); err != nil {
		f.Close()
		cleanup()
		return nil, nil, fmt.Errorf("nsswitch for a blind command: %w", err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("nsswitch for a blind command: %w", err)
	}
	code := `nss=$1; shift
for f in /etc/passwd /etc/group; do [ ! -e "$f" ] || mount --bind /dev/null "$f" || exit 125; done
[ ! -e /etc/nsswitch.conf ] || mount --bind "$nss" /etc/nsswitch.conf || exit 125
[ ! -S /run/nscd/socket ] || mount --bind /dev/null /run/nscd/socket 2>/dev/null || :
` + body
	argv = append([]string{"unshare", "--mount", "--propagation", "private"}, flags...)
	argv = append(argv, "--", "sh", "-c", code, "ownerwall-blind", name)
	return append(argv, args...), cleanup, nil
}
