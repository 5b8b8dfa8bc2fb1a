package ident

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// NSS resolves identities through getent(1), so every NSS source the host
// is configured with (files, LDAP, SSSD, ...) counts. Results are cached for
// the life of the value: one command sees one consistent view.
type NSS struct {
	enumerated, groupsEnumerated bool

	accounts []Account
	byName   map[string]Account
	byUID    map[uint32]Account
	groups   map[string]Group
	gids     map[uint32]Group
}

// NewNSS returns an NSS directory with empty caches.
func NewNSS() *NSS {
	return &NSS{byName: map[string]Account{}, byUID: map[uint32]Account{}, groups: map[string]Group{}, gids: map[uint32]Group{}}
}

// getent runs `getent DB KEY...`; exit status 2 means "no such key".
func getent(ctx context.Context, db string, keys ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "getent", append([]string{db}, keys...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("getent %s: %w %s", db, err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

func (n *NSS) lookupAccount(ctx context.Context, key string) (Account, error) {
	out, err := getent(ctx, "passwd", key)
	if err != nil {
		return Account{}, err
	}
	as, err := ParsePasswd(strings.NewReader(out))
	if err != nil || len(as) == 0 {
		return Account{}, fmt.Errorf("getent passwd %s: unreadable answer", key)
	}
	n.byName[as[0].Name], n.byUID[as[0].UID] = as[0], as[0]
	return as[0], nil
}

func (n *NSS) LookupUser(ctx context.Context, name string) (Account, error) {
	if a, ok := n.byName[name]; ok {
		return a, nil
	}
	if err := n.enumerate(ctx); err != nil {
		return Account{}, err
	}
	if a, ok := n.byName[name]; ok {
		return a, nil
	}
	if isDigits(name) { // getent would take it as a uid
		return Account{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	a, err := n.lookupAccount(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return a, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	return a, err
}

func (n *NSS) LookupUID(ctx context.Context, uid uint32) (Account, error) {
	if a, ok := n.byUID[uid]; ok {
		return a, nil
	}
	if err := n.enumerate(ctx); err != nil {
		return Account{}, err
	}
	if a, ok := n.byUID[uid]; ok {
		return a, nil
	}
	a, err := n.lookupAccount(ctx, strconv.FormatUint(uint64(uid), 10))
	if errors.Is(err, ErrNotFound) {
		return a, fmt.Errorf("uid %d: %w", uid, ErrNotFound)
	}
	return a, err
}

func (n *NSS) lookupGroup(ctx context.Context, key string) (Group, error) {
	out, err := getent(ctx, "group", key)
	if err != nil {
		return Group{}, err
	}
	gs, err := ParseGroup(strings.NewReader(out))
	if err != nil || len(gs) == 0 {
		return Group{}, fmt.Errorf("getent group %s: unreadable answer", key)
	}
	n.groups[gs[0].Name], n.gids[gs[0].GID] = gs[0], gs[0]
	return gs[0], nil
}

func (n *NSS) LookupGroup(ctx context.Context, name string) (Group, error) {
	if err := n.enumerateGroups(ctx); err != nil {
		return Group{}, err
	}
	if g, ok := n.groups[name]; ok {
		return g, nil
	}
	if isDigits(name) {
		return Group{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	g, err := n.lookupGroup(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return g, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return g, err
}

func (n *NSS) LookupGID(ctx context.Context, gid uint32) (Group, error) {
	if err := n.enumerateGroups(ctx); err != nil {
		return Group{}, err
	}
	if g, ok := n.gids[gid]; ok {
		return g, nil
	}
	g, err := n.lookupGroup(ctx, strconv.FormatUint(uint64(gid), 10))
	if errors.Is(err, ErrNotFound) {
		return g, fmt.Errorf("gid %d: %w", gid, ErrNotFound)
	}
	return g, err
}

// Accounts lists every account `getent passwd` enumerates, and those
// looked up by name that it does not (SSSD does not enumerate by default).
func (n *NSS) Accounts(ctx context.Context) ([]Account, error) {
	if err := n.enumerate(ctx); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(n.accounts))
	out := append([]Account(nil), n.accounts...)
	for _, a := range n.accounts {
		seen[a.Name] = true
	}
	for name, a := range n.byName {
		if !seen[name] {
			out = append(out, a)
		}
	}
	return out, nil
}

// Prefetch runs `getent passwd` and `getent group` at once, rather than
// one after the other when the first lookups need them: a compile of a
// policy with group principals needs both, and the two processes take
// about as long as the rest of a small compile.
func (n *NSS) Prefetch(ctx context.Context) error {
	if n.enumerated || n.groupsEnumerated {
		return nil
	}
	var groups string
	var gerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		groups, gerr = getent(ctx, "group")
	}()
	passwd, perr := getent(ctx, "passwd")
	<-done
	if err := n.fillAccounts(passwd, perr); err != nil {
		return err
	}
	return n.fillGroups(groups, gerr)
}

// enumerate reads `getent passwd` once: one process for any number of
// lookups. Names it does not list are then asked for one by one.
func (n *NSS) enumerate(ctx context.Context) error {
	if n.enumerated {
		return nil
	}
	out, err := getent(ctx, "passwd")
	return n.fillAccounts(out, err)
}

// fillAccounts takes the output of `getent passwd` into the cache.
func (n *NSS) fillAccounts(out string, err error) error {
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	as, err := ParsePasswd(strings.NewReader(out))
	if err != nil {
		return fmt.Errorf("getent passwd: %w", err)
	}
	for _, a := range as {
		if _, ok := n.byName[a.Name]; !ok {
			n.byName[a.Name] = a
		}
		if _, ok := n.byUID[a.UID]; !ok {
			n.byUID[a.UID] = a
		}
	}
	n.accounts, n.enumerated = as, true
	return nil
}

// enumerateGroups reads `getent group` once.
func (n *NSS) enumerateGroups(ctx context.Context) error {
	if n.groupsEnumerated {
		return nil
	}
	out, err := getent(ctx, "group")
	return n.fillGroups(out, err)
}

// fillGroups takes the output of `getent group` into the cache.
func (n *NSS) fillGroups(out string, err error) error {
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	gs, err := ParseGroup(strings.NewReader(out))
	if err != nil {
		return fmt.Errorf("getent group: %w", err)
	}
	for _, g := range gs {
		if _, ok := n.groups[g.Name]; !ok {
			n.groups[g.Name] = g
		}
		if _, ok := n.gids[g.GID]; !ok {
			n.gids[g.GID] = g
		}
	}
	n.groupsEnumerated = true
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Systemd resolves units with `systemctl show -p ControlGroup`.
type Systemd struct{}

func (Systemd) UnitCgroup(ctx context.Context, unit string) (string, error) {
	cmd := exec.CommandContext(ctx, "systemctl", "show", "--property=ControlGroup", "--value", "--", unit)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("unit %q: systemctl show: %w", unit, err)
	}
	path := strings.Trim(strings.TrimSpace(string(out)), "/")
	if path == "" {
		return "", fmt.Errorf("unit %q (not loaded, or has no cgroup: is it running?): %w", unit, ErrNotFound)
	}
	return path, nil
}

// Resolver resolves host names with the system resolver (/etc/hosts and DNS).
type Resolver struct{}

func (Resolver) LookupHost(ctx context.Context, name string) ([]netip.Addr, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, fmt.Errorf("host %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("host %q: %w", name, err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Unmap())
	}
	return out, nil
}
