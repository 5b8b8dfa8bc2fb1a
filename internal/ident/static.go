package ident

import (
	"context"
	"fmt"
	"net/netip"
)

// Static is an in-memory Directory, Units and Hosts, for tests and for
// explaining against a fixed snapshot.
type Static struct {
	Users     []Account
	Groups    []Group
	UnitPaths map[string]string
	HostAddrs map[string][]netip.Addr
}

// NewStatic builds a Static from passwd(5) and group(5) text.
func NewStatic(passwd, group string) (*Static, error) {
	users, err := parsePasswd(passwd)
	if err != nil {
		return nil, err
	}
	groups, err := parseGroup(group)
	if err != nil {
		return nil, err
	}
	return &Static{Users: users, Groups: groups}, nil
}

func (s *Static) LookupUser(_ context.Context, name string) (Account, error) {
	for _, a := range s.Users {
		if a.Name == name {
			return a, nil
		}
	}
	return Account{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
}

func (s *Static) LookupUID(_ context.Context, uid uint32) (Account, error) {
	for _, a := range s.Users {
		if a.UID == uid {
			return a, nil
		}
	}
	return Account{}, fmt.Errorf("uid %d: %w", uid, ErrNotFound)
}

func (s *Static) LookupGroup(_ context.Context, name string) (Group, error) {
	for _, g := range s.Groups {
		if g.Name == name {
			return g, nil
		}
	}
	return Group{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
}

func (s *Static) LookupGID(_ context.Context, gid uint32) (Group, error) {
	for _, g := range s.Groups {
		if g.GID == gid {
			return g, nil
		}
	}
	return Group{}, fmt.Errorf("gid %d: %w", gid, ErrNotFound)
}

func (s *Static) Accounts(context.Context) ([]Account, error) { return s.Users, nil }

func (s *Static) UnitCgroup(_ context.Context, unit string) (string, error) {
	if p, ok := s.UnitPaths[unit]; ok {
		return p, nil
	}
	return "", fmt.Errorf("unit %q: %w", unit, ErrNotFound)
}

func (s *Static) LookupHost(_ context.Context, name string) ([]netip.Addr, error) {
	if a, ok := s.HostAddrs[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("host %q: %w", name, ErrNotFound)
}
