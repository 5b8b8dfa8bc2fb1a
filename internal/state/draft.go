package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// Draft is an applied record being written while the kernel loads its
// ruleset: the large parts (the script and the compiled ruleset, megabytes
// at 10,000 rules) are encoded, written to a temporary file and synced in
// the background, and Commit adds the small rest (generation, flavour, ...)
// once the load has succeeded, then renames the file into place. An apply
// waits for the slower of the two, not for both in turn.
//
// The file is one JSON object like any other record; its large fields
// simply come first.
type Draft struct {
	s    Store
	done chan struct{}
	tmp  *os.File
	err  error
}

// Draft starts writing the record of rs and its script (script is called
// once, in the background; it may be shared with the load, as a
// sync.OnceValue); call Commit or Discard exactly once.
//
// The caller holds the lock: temporary files that a killed apply left
// behind are removed first.
func (s Store) Draft(script func() string, rs *ir.Ruleset) *Draft {
	if stale, err := filepath.Glob(filepath.Join(s.Dir, "."+appliedFile+".*")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	d := &Draft{s: s, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.tmp, d.err = s.writeLarge(script(), rs)
	}()
	return d
}

// writeLarge writes `{"script":...,"ruleset":...` to a new temporary file
// and syncs it.
func (s Store) writeLarge(script string, rs *ir.Ruleset) (*os.File, error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, "."+appliedFile+".*")
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	w.WriteString(`{"script":`) // a bufio.Writer keeps its first error for Flush
	err = enc.Encode(script)
	if err == nil {
		w.WriteString(`,"ruleset":`)
		err = enc.Encode(rs)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("state: %w", err)
	}
	return tmp, nil
}

// Commit completes the record with a's other fields (a.Script and
// a.Ruleset are those of the draft) and puts it in place atomically.
func (d *Draft) Commit(a *Applied) error {
	<-d.done
	if d.err != nil {
		return d.err
	}
	defer os.Remove(d.tmp.Name())
	head, err := json.Marshal(restOf(a))
	if err != nil {
		d.tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	// head is {"format":1,...}: it continues the object after the ruleset.
	head[0] = ','
	if _, err := d.tmp.Write(head); err != nil {
		d.tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := d.tmp.Sync(); err != nil {
		d.tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := d.tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(d.tmp.Name(), d.s.path(appliedFile)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return syncDir(d.s.Dir)
}

// Discard drops the draft (the load failed: the last record stays).
func (d *Draft) Discard() {
	<-d.done
	if d.err == nil {
		d.tmp.Close()
		os.Remove(d.tmp.Name())
	}
}

// appliedRest is Applied without the fields a draft writes first.
type appliedRest struct {
	Format    int       `json:"format"`
	Backend   string    `json:"backend"`
	Flavour   string    `json:"flavour,omitempty"`
	Policy    string    `json:"policy_file"`
	SHA256    string    `json:"policy_sha256"`
	AppliedAt time.Time `json:"applied_at"`
	Listing   string    `json:"listing,omitempty"`
	Mark      *Mark     `json:"kernel_mark,omitempty"`
}

func restOf(a *Applied) appliedRest {
	return appliedRest{Format: 1, Backend: a.Backend, Flavour: a.Flavour, Policy: a.Policy,
		SHA256: a.SHA256, AppliedAt: a.AppliedAt, Listing: a.Listing, Mark: a.Mark}
}
