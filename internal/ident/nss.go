package ident

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// NSS resolves identities through getent(1), so every NSS source the host
// is configured with (files, LDAP, SSSD, ...) counts. Results are cached for
// the life of the value (or until ForgetAccounts, ForgetGroups): one command
// sees one consistent view.
type NSS struct {
	getent Getent

	enumerated, groupsEnumerated bool

	// accounts are the `listed` accounts `getent passwd` listed, in its
	// order, then those looked up one by one since. byName leads from a
	// name to the first listed account of that name, or to its latest
	// lookup. extra lists the names that lookups added: those the
	// enumeration does not list (SSSD does not enumerate by default).
	accounts []Account
	listed   int
	byName   *nameIndex
	extra    []string
	// byUID is built at the first lookup by uid: compiling needs none.
	byUID map[uint32]Account
	// primary indexes accounts by primary gid, built at the first need.
	primary *primaryTable

	groups map[string]Group
	gids   map[uint32]Group
}

// Getent answers `getent DB [KEY...]`: it writes what getent prints to
// w, and returns an error that wraps ErrNotFound when no key resolves
// (exit status 2). Prefetch calls it for two databases at once.
type Getent func(ctx context.Context, w io.Writer, db string, keys ...string) error

// NewNSS returns an NSS directory with empty caches.
func NewNSS() *NSS { return NewNSSWith(runGetent) }

// NewNSSWith returns an NSS directory that asks q instead of running
// getent(1): for tests and benchmarks.
func NewNSSWith(q Getent) *NSS {
	n := &NSS{getent: q}
	n.ForgetAccounts()
	n.ForgetGroups()
	return n
}

// ForgetAccounts drops every cached account and what was derived from
// them: the next lookup runs `getent passwd` again.
func (n *NSS) ForgetAccounts() {
	n.enumerated = false
	n.accounts, n.listed, n.extra = nil, 0, nil
	n.byName, n.byUID, n.primary = newNameIndex(), nil, nil
}

// ForgetGroups drops every cached group: the next lookup runs
// `getent group` again.
func (n *NSS) ForgetGroups() {
	n.groupsEnumerated = false
	n.groups, n.gids = map[string]Group{}, map[uint32]Group{}
}

// runGetent runs `getent DB KEY...`; exit status 2 means "no such key".
func runGetent(ctx context.Context, w io.Writer, db string, keys ...string) error {
	cmd := exec.CommandContext(ctx, "getent", append([]string{db}, keys...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("getent %s: %w %s", db, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (n *NSS) lookupAccount(ctx context.Context, key string) (Account, error) {
	var w passwdWriter
	if err := n.getent(ctx, &w, "passwd", key); err != nil {
		return Account{}, err
	}
	as, err := w.finish()
	if err != nil || len(as) == 0 {
		return Account{}, fmt.Errorf("getent passwd %s: unreadable answer", key)
	}
	a := as[0]
	n.accounts = append(n.accounts, a)
	if n.byName.set(n.accounts, len(n.accounts)-1, false) {
		n.extra = append(n.extra, a.Name)
	}
	if n.byUID != nil {
		n.byUID[a.UID] = a
	}
	return a, nil
}

func (n *NSS) LookupUser(ctx context.Context, name string) (Account, error) {
	if i, ok := n.byName.find(name, n.accounts); ok {
		return n.accounts[i], nil
	}
	if err := n.enumerate(ctx); err != nil {
		return Account{}, err
	}
	if i, ok := n.byName.find(name, n.accounts); ok {
		return n.accounts[i], nil
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
	if err := n.enumerate(ctx); err != nil {
		return Account{}, err
	}
	if a, ok := n.uidIndex()[uid]; ok {
		return a, nil
	}
	a, err := n.lookupAccount(ctx, strconv.FormatUint(uint64(uid), 10))
	if errors.Is(err, ErrNotFound) {
		return a, fmt.Errorf("uid %d: %w", uid, ErrNotFound)
	}
	return a, err
}

// uidIndex builds byUID: the first listed account of each uid, then
// the lookups, the later one winning.
func (n *NSS) uidIndex() map[uint32]Account {
	if n.byUID == nil {
		n.byUID = make(map[uint32]Account, len(n.accounts))
		for _, a := range n.accounts[:n.listed] {
			if _, ok := n.byUID[a.UID]; !ok {
				n.byUID[a.UID] = a
			}
		}
		for _, a := range n.accounts[n.listed:] {
			n.byUID[a.UID] = a
		}
	}
	return n.byUID
}

func (n *NSS) lookupGroup(ctx context.Context, key string) (Group, error) {
	var w groupWriter
	if err := n.getent(ctx, &w, "group", key); err != nil {
		return Group{}, err
	}
	gs, err := w.finish()
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
	out := make([]Account, n.listed, n.listed+len(n.extra))
	copy(out, n.accounts)
	return append(out, n.extraAccounts()...), nil
}

// extraAccounts are the accounts looked up by name that the enumeration
// does not list, as they are now.
func (n *NSS) extraAccounts() []Account {
	if len(n.extra) == 0 {
		return nil
	}
	out := make([]Account, len(n.extra))
	for i, name := range n.extra {
		j, _ := n.byName.find(name, n.accounts)
		out[i] = n.accounts[j]
	}
	return out
}

// PrimaryIndex is NewPrimaryIndex for n: the index of the enumerated
// accounts is built once for n, not once per call.
func (n *NSS) PrimaryIndex(ctx context.Context) (*PrimaryIndex, error) {
	if err := n.enumerate(ctx); err != nil {
		return nil, err
	}
	if n.primary == nil {
		n.primary = newPrimaryTable(n.accounts[:n.listed:n.listed])
	}
	return &PrimaryIndex{table: n.primary, extra: n.extraAccounts()}, nil
}

// Prefetch runs `getent passwd` and `getent group` at once, rather than
// one after the other when the first lookups need them: a compile of a
// policy with group principals needs both, and the two processes take
// about as long as the rest of a small compile.
func (n *NSS) Prefetch(ctx context.Context) error {
	if n.enumerated || n.groupsEnumerated {
		return nil
	}
	var groups groupWriter
	var gerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		gerr = n.getent(ctx, &groups, "group")
	}()
	passwd := passwdWriter{byName: newNameIndex()}
	perr := n.getent(ctx, &passwd, "passwd")
	<-done
	if err := n.fillAccounts(&passwd, perr); err != nil {
		return err
	}
	return n.fillGroups(&groups, gerr)
}

// enumerate reads `getent passwd` once: one process for any number of
// lookups. Names it does not list are then asked for one by one.
func (n *NSS) enumerate(ctx context.Context) error {
	if n.enumerated {
		return nil
	}
	w := passwdWriter{byName: newNameIndex()}
	err := n.getent(ctx, &w, "passwd")
	return n.fillAccounts(&w, err)
}

// fillAccounts takes the output of `getent passwd` into the cache, which
// holds no account yet: lookups come after it.
func (n *NSS) fillAccounts(w *passwdWriter, err error) error {
	var as []Account
	switch {
	case errors.Is(err, ErrNotFound): // none
	case err != nil:
		return err
	default:
		if as, err = w.finish(); err != nil {
			return fmt.Errorf("getent passwd: %w", err)
		}
	}
	if w.byName == nil || len(as) == 0 {
		w.byName = newNameIndex()
		for i := range as {
			w.byName.set(as, i, true)
		}
	}
	n.accounts, n.listed, n.byName = as, len(as), w.byName
	n.extra, n.byUID, n.primary, n.enumerated = nil, nil, nil, true
	return nil
}

// enumerateGroups reads `getent group` once.
func (n *NSS) enumerateGroups(ctx context.Context) error {
	if n.groupsEnumerated {
		return nil
	}
	var w groupWriter
	err := n.getent(ctx, &w, "group")
	return n.fillGroups(&w, err)
}

// fillGroups takes the output of `getent group` into the cache.
func (n *NSS) fillGroups(w *groupWriter, err error) error {
	var gs []Group
	switch {
	case errors.Is(err, ErrNotFound): // none
	case err != nil:
		return err
	default:
		if gs, err = w.finish(); err != nil {
			return fmt.Errorf("getent group: %w", err)
		}
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
