// Package ident answers who is who: accounts, groups and their members,
// systemd units' cgroups and host names. The NSS implementation asks getent,
// so LDAP and SSSD accounts count; Static serves tests.
package ident

import (
	"context"
	"errors"
	"net/netip"
)

// ErrNotFound is returned (wrapped) when a name or id does not resolve.
var ErrNotFound = errors.New("not found")

// Account is one passwd entry.
type Account struct {
	Name string
	UID  uint32
	GID  uint32 // primary group
}

// Group is one group entry; Members are the names listed as supplementary
// members.
type Group struct {
	Name    string
	GID     uint32
	Members []string
}

// Directory resolves identities. Implementations must be safe for use by one
// goroutine at a time; callers do not share them.
type Directory interface {
	LookupUser(ctx context.Context, name string) (Account, error)
	LookupUID(ctx context.Context, uid uint32) (Account, error)
	LookupGroup(ctx context.Context, name string) (Group, error)
	LookupGID(ctx context.Context, gid uint32) (Group, error)
	// Accounts enumerates every account NSS will list; it finds the
	// accounts whose primary group a group is.
	Accounts(ctx context.Context) ([]Account, error)
}

// Units resolves a systemd unit to its cgroup v2 path, relative to the
// cgroup2 mount (e.g. "system.slice/stunnel.service").
type Units interface {
	UnitCgroup(ctx context.Context, unit string) (string, error)
}

// Hosts resolves a host name to all its addresses.
type Hosts interface {
	LookupHost(ctx context.Context, name string) ([]netip.Addr, error)
}

// Membership says how an account belongs to a group.
type Membership string

const (
	Primary       Membership = "primary"
	Supplementary Membership = "supplementary"
)

// Member is one account that belongs to a group, and how.
type Member struct {
	Account
	Via Membership
}

// Members lists the accounts that belong to g: those whose primary group it
// is, and those listing it as a supplementary group. An account in both ways
// is reported once, as primary. Supplementary names without an account are
// skipped: no process can run as them.
func Members(ctx context.Context, d Directory, g Group) ([]Member, error) {
	idx, err := NewPrimaryIndex(ctx, d)
	if err != nil {
		return nil, err
	}
	return idx.Members(ctx, d, g)
}
