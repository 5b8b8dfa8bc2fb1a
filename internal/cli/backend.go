package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/ownerwall/ownerwall/internal/backend/iptables"
	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/state"
)

// backend is what the operational commands need from a firewall backend.
type backend interface {
	Name() string
	// Flavour names the implementation in use (nft's version; legacy or
	// nf_tables for iptables).
	Flavour(ctx context.Context) string
	Script(rs *ir.Ruleset) string
	// Load replaces ownerwall's ruleset with rs in one transaction;
	// script returns Script(rs), rendered once and shared with the
	// record, for the backends that load the text itself.
	Load(ctx context.Context, rs *ir.Ruleset, script func() string) error
	// LoadScript loads a script from Script or Snapshot.
	LoadScript(ctx context.Context, script string) error
	Flush(ctx context.Context) error
	// Listing is ownerwall's live ruleset as the kernel reports it, "" if none.
	Listing(ctx context.Context) (string, error)
	// Mark identifies the kernel's ruleset as it is now, when the backend
	// has a way to (nf_tables: its generation, in this boot and network
	// namespace).
	Mark() (state.Mark, bool)
	// Reference is the listing that script gives once loaded, made in a
	// scratch network namespace (for backends with a Mark).
	Reference(ctx context.Context, script string) (string, error)
	// Snapshot is a script that puts the live ruleset back as it is now.
	Snapshot(ctx context.Context) (string, error)
	Counters(ctx context.Context) ([]nft.Counter, error)
	// Update turns the loaded prev into next in place when only uid map
	// elements differ; ok is false when it cannot (then Load).
	Update(ctx context.Context, prev, next *ir.Ruleset) (changes int, ok bool, err error)
}

func newBackend(name string) (backend, error) {
	switch name {
	case "nft", "":
		return nftBackend{}, nil
	case "iptables":
		return iptablesBackend{}, nil
	}
	return nil, fmt.Errorf("unknown backend %q (nft or iptables)", name)
}

type nftBackend struct{}

func (nftBackend) Name() string { return "nft" }

func (nftBackend) Flavour(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "nft", "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func (nftBackend) Script(rs *ir.Ruleset) string { return nft.Script(rs) }

func (nftBackend) Load(ctx context.Context, rs *ir.Ruleset, script func() string) error {
	return nft.Load(ctx, script(), nft.HasUnits(rs))
}

func (nftBackend) LoadScript(ctx context.Context, script string) error {
	return nft.Load(ctx, script, strings.Contains(script, "socket cgroupv2"))
}

func (nftBackend) Flush(ctx context.Context) error {
	return nft.Load(ctx, nft.FlushScript(), false)
}

func (nftBackend) Listing(ctx context.Context) (string, error) { return nft.List(ctx) }

func (nftBackend) Mark() (state.Mark, bool) {
	g, err := nft.Generation()
	if err != nil {
		return state.Mark{}, false
	}
	m, err := state.MarkOf(g)
	return m, err == nil
}

func (nftBackend) Reference(ctx context.Context, script string) (string, error) {
	return nft.Reference(ctx, script)
}

func (nftBackend) Snapshot(ctx context.Context) (string, error) { return nft.Snapshot(ctx) }

func (nftBackend) Counters(ctx context.Context) ([]nft.Counter, error) { return nft.Counters(ctx) }

func (nftBackend) Update(ctx context.Context, prev, next *ir.Ruleset) (int, bool, error) {
	script, changes, ok := nft.Update(prev, next)
	if !ok || changes == 0 {
		return 0, ok, nil
	}
	return changes, true, nft.Load(ctx, script, false)
}

// iptablesBackend drives iptables-restore and ip6tables-restore, legacy or
// nf_tables, whichever the host's iptables is.
type iptablesBackend struct{}

func (iptablesBackend) Name() string { return "iptables" }

func (iptablesBackend) Flavour(ctx context.Context) string {
	f, err := iptables.Flavour(ctx)
	if err != nil {
		return "unknown"
	}
	return f
}

func (iptablesBackend) Script(rs *ir.Ruleset) string { return iptables.Script(rs) }

// Load builds both families' chains from rs (script, their text, would
// have to be parsed back).
func (iptablesBackend) Load(ctx context.Context, rs *ir.Ruleset, _ func() string) error {
	return iptables.Load(ctx, rs)
}

func (iptablesBackend) LoadScript(ctx context.Context, script string) error {
	return iptables.LoadScript(ctx, script)
}

func (iptablesBackend) Flush(ctx context.Context) error { return iptables.Flush(ctx) }

func (iptablesBackend) Listing(ctx context.Context) (string, error) { return iptables.Listing(ctx) }

// Mark: iptables-legacy has none, and the listing of the xtables chains
// is recorded at apply instead.
func (iptablesBackend) Mark() (state.Mark, bool) { return state.Mark{}, false }

func (iptablesBackend) Reference(context.Context, string) (string, error) {
	return "", errors.New("iptables: no reference listing, the listing is recorded at apply")
}

func (iptablesBackend) Snapshot(ctx context.Context) (string, error) { return iptables.Snapshot(ctx) }

// Update is not offered: xtables keeps uids in rules, not in a map.
func (iptablesBackend) Update(context.Context, *ir.Ruleset, *ir.Ruleset) (int, bool, error) {
	return 0, false, nil
}

func (iptablesBackend) Counters(ctx context.Context) ([]nft.Counter, error) {
	cs, err := iptables.Counters(ctx)
	out := make([]nft.Counter, len(cs))
	for i, c := range cs {
		out[i] = nft.Counter(c)
	}
	return out, err
}
