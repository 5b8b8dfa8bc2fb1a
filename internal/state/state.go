// Package state keeps what ownerwall applied last, so that status can show
// it, plan can diff against it, restore can load it at boot and a pending
// confirmation can roll back to it. Files are written atomically (write,
// fsync, rename, fsync the directory) and serialized by a lock.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// DefaultDir is where the state lives unless OWNERWALL_STATE_DIR says
// otherwise (tests and the lab point it into their throwaway directory).
const DefaultDir = "/var/lib/ownerwall"

// Dir returns the state directory in force.
func Dir() string {
	if d := os.Getenv("OWNERWALL_STATE_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// Applied is the record of the last successful apply.
type Applied struct {
	Format    int       `json:"format"` // 1
	Backend   string    `json:"backend"`
	Flavour   string    `json:"flavour,omitempty"`
	Policy    string    `json:"policy_file"`
	SHA256    string    `json:"policy_sha256"`
	AppliedAt time.Time `json:"applied_at"`
	Script    string    `json:"script"` // exactly what was loaded
	// Listing is the live ruleset right after, counters zeroed: drift is
	// measured against it. The nft backend records Mark instead:
	// while the kernel's generation has not moved, nothing changed; when
	// it has, the reference listing is made again from Script, in a
	// scratch network namespace. Listing 100,000 uid elements takes nft a
	// second, and an apply need not wait for it.
	Listing string `json:"listing,omitempty"`
	// Mark is the kernel's state right after the load (nft); nil when it
	// is not known to be ownerwall's own (someone else committed at the
	// same moment): then the next apply replaces the whole table.
	Mark    *Mark       `json:"kernel_mark,omitempty"`
	Ruleset *ir.Ruleset `json:"ruleset"` // for explain --live and plan
}

// Pending is an apply awaiting `ownerwall confirm`.
type Pending struct {
	Token    string    `json:"token"`
	Deadline time.Time `json:"deadline"`
	Backend  string    `json:"backend"`
	Rollback string    `json:"rollback"` // a script that restores the ruleset live before the apply
	Previous *Applied  `json:"previous"` // the state before; nil: there was none
}

const (
	appliedFile = "applied.json"
	pendingFile = "pending.json"
	lockFile    = "lock"
)

// ErrNone means there is no such state file.
var ErrNone = errors.New("no state")

// Store reads and writes the state files of one directory.
type Store struct{ Dir string }

// LoadApplied reads the last applied state.
func (s Store) LoadApplied() (*Applied, error) {
	var a Applied
	if err := s.read(appliedFile, &a); err != nil {
		return nil, err
	}
	if a.Format != 1 || a.Script == "" {
		return nil, fmt.Errorf("state %s: not an ownerwall state file (format %d)", s.path(appliedFile), a.Format)
	}
	return &a, nil
}

// SaveApplied records a successful apply.
func (s Store) SaveApplied(a *Applied) error {
	a.Format = 1
	return s.Draft(func() string { return a.Script }, a.Ruleset).Commit(a)
}

// AppliedPath is the file of the applied record.
func (s Store) AppliedPath() string { return s.path(appliedFile) }

// RemoveApplied forgets the last apply (after flush).
func (s Store) RemoveApplied() error { return s.remove(appliedFile) }

// LoadPending reads the pending confirmation.
func (s Store) LoadPending() (*Pending, error) {
	var p Pending
	if err := s.read(pendingFile, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (s Store) SavePending(p *Pending) error { return s.write(pendingFile, p) }

func (s Store) RemovePending() error { return s.remove(pendingFile) }

func (s Store) path(name string) string { return filepath.Join(s.Dir, name) }

func (s Store) read(name string, v any) error {
	data, err := os.ReadFile(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", s.path(name), ErrNone)
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("state %s is corrupt: %w", s.path(name), err)
	}
	return nil
}

// write replaces name atomically: a reader (or a crash) sees the old file
// or the new one, never a mix.
func (s Store) write(name string, v any) error {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path(name)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return syncDir(s.Dir)
}

func (s Store) remove(name string) error {
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return syncDir(s.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state: sync %s: %w", dir, err)
	}
	return nil
}
