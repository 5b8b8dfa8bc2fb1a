package ident

import (
	"context"
	"errors"
)

// PrimaryIndex finds the accounts by primary gid: built once, it answers
// Members for any number of groups without going through every account
// for each (with 100,000 accounts and 10 groups, 300 ms saved). It is a
// snapshot: accounts a directory learns of later are not in it.
type PrimaryIndex struct {
	table *primaryTable
	// extra are accounts outside the table, looked through for each
	// group: those NSS looked up by name but `getent passwd` does not
	// list (a handful).
	extra []Account
}

// primaryIndexer is a Directory that keeps its own PrimaryIndex, so that
// it is built once for the directory, not once per use (ident.NSS).
type primaryIndexer interface {
	PrimaryIndex(ctx context.Context) (*PrimaryIndex, error)
}

// NewPrimaryIndex enumerates d's accounts once.
func NewPrimaryIndex(ctx context.Context, d Directory) (*PrimaryIndex, error) {
	if pi, ok := d.(primaryIndexer); ok {
		return pi.PrimaryIndex(ctx)
	}
	all, err := d.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	return &PrimaryIndex{table: newPrimaryTable(all)}, nil
}

// Members is Members for group g, with idx built from d.
func (idx *PrimaryIndex) Members(ctx context.Context, d Directory, g Group) ([]Member, error) {
	primary := idx.table.withGID(g.GID)
	out := make([]Member, 0, len(primary)+len(g.Members))
	seen := make(map[string]struct{}, len(primary)+len(g.Members))
	for _, a := range primary {
		if _, ok := seen[a.Name]; !ok {
			seen[a.Name] = struct{}{}
			out = append(out, Member{Account: a, Via: Primary})
		}
	}
	for _, a := range idx.extra {
		if _, ok := seen[a.Name]; !ok && a.GID == g.GID {
			seen[a.Name] = struct{}{}
			out = append(out, Member{Account: a, Via: Primary})
		}
	}
	for _, name := range g.Members {
		if _, ok := seen[name]; ok {
			continue
		}
		a, err := d.LookupUser(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		seen[name] = struct{}{}
		out = append(out, Member{Account: a, Via: Supplementary})
	}
	return out, nil
}

// primaryTable answers "whose primary group is gid" over a fixed list of
// accounts. The first few gids asked for are found by going through the
// list (0.1 ms for 100,000 accounts); past those it indexes every gid at
// once, which costs about as much as a few dozen passes.
type primaryTable struct {
	accounts []Account
	byGID    map[uint32][]Account
	complete bool // byGID holds every gid, not just those asked for
}

// scannedGIDs is how many gids a primaryTable finds by a pass over the
// accounts before it indexes them all.
const scannedGIDs = 16

func newPrimaryTable(accounts []Account) *primaryTable {
	return &primaryTable{accounts: accounts, byGID: map[uint32][]Account{}}
}

// withGID lists, in directory order, the accounts whose primary gid is gid.
// The caller must not modify the list.
func (t *primaryTable) withGID(gid uint32) []Account {
	if as, ok := t.byGID[gid]; ok || t.complete {
		return as
	}
	if len(t.byGID) >= scannedGIDs {
		t.byGID, t.complete = groupByGID(t.accounts), true
		return t.byGID[gid]
	}
	var as []Account
	for i := range t.accounts {
		if t.accounts[i].GID == gid {
			as = append(as, t.accounts[i])
		}
	}
	t.byGID[gid] = as
	return as
}

// groupByGID indexes accounts by primary gid, all the lists in one array.
func groupByGID(accounts []Account) map[uint32][]Account {
	count := map[uint32]int{}
	for i := 0; i < len(accounts); {
		j := i + 1 // a run of one gid costs one map update
		for j < len(accounts) && accounts[j].GID == accounts[i].GID {
			j++
		}
		count[accounts[i].GID] += j - i
		i = j
	}
	all := make([]Account, 0, len(accounts))
	out := make(map[uint32][]Account, len(count))
	for gid, n := range count {
		out[gid] = all[len(all) : len(all) : len(all)+n]
		all = all[:len(all)+n]
	}
	for i := 0; i < len(accounts); {
		j := i + 1
		for j < len(accounts) && accounts[j].GID == accounts[i].GID {
			j++
		}
		gid := accounts[i].GID
		out[gid] = append(out[gid], accounts[i:j]...)
		i = j
	}
	return out
}
