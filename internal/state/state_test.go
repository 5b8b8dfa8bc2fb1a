package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ownerwall/ownerwall/internal/ir"
)

func TestAppliedRoundTrip(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	if _, err := s.LoadApplied(); !errors.Is(err, ErrNone) {
		t.Fatalf("empty store: %v, want ErrNone", err)
	}
	in := &Applied{Backend: "nft", Policy: "/etc/ownerwall/policy.yaml", Script: "add table inet ownerwall\n",
		AppliedAt: time.Unix(1700000000, 0).UTC(), Ruleset: &ir.Ruleset{Outbound: ir.Drop, Stateful: true}}
	if err := s.SaveApplied(in); err != nil {
		t.Fatal(err)
	}
	out, err := s.LoadApplied()
	if err != nil {
		t.Fatal(err)
	}
	if out.Format != 1 || out.Backend != "nft" || out.Script != in.Script || !out.AppliedAt.Equal(in.AppliedAt) || out.Ruleset.Outbound != ir.Drop {
		t.Errorf("round trip: %+v", out)
	}
	entries, _ := os.ReadDir(s.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("a temporary file was left behind: %s", e.Name())
		}
	}
	if err := s.RemoveApplied(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadApplied(); !errors.Is(err, ErrNone) {
		t.Errorf("after remove: %v", err)
	}
}

func TestCorruptStateIsAClearError(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	for name, content := range map[string]string{
		"truncated": `{"format": 1, "backend": "nft", "scr`,
		"not ours":  `{"hello": "world"}`,
		"binary":    "\x00\x01\x02",
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, appliedFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.LoadApplied()
		if err == nil || errors.Is(err, ErrNone) {
			t.Errorf("%s: err = %v, want a corruption error", name, err)
			continue
		}
		if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), s.Dir) {
			t.Errorf("%s: want one line naming the file, got %q", name, err)
		}
	}
}

func TestLockSerializes(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	l, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx); err == nil {
		t.Fatal("a second lock was granted while the first is held")
	}
	l.Release()
	l2, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestPendingRoundTrip(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	p := &Pending{Token: "abc", Deadline: time.Now().Add(time.Minute).UTC().Truncate(time.Second), Backend: "nft", Rollback: "add table inet ownerwall\ndelete table inet ownerwall\n"}
	if err := s.SavePending(p); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadPending()
	if err != nil || got.Token != "abc" || !got.Deadline.Equal(p.Deadline) || got.Previous != nil {
		t.Fatalf("%+v, %v", got, err)
	}
	if err := s.RemovePending(); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovePending(); err != nil {
		t.Errorf("removing twice: %v", err)
	}
}
