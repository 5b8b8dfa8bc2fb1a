package fswatch

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func next(t *testing.T, w *Watcher) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return got
}

func want(t *testing.T, got []string, labels ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, labels) {
		t.Fatalf("changed %v, want %v", got, labels)
	}
}

// TestEveryWayOfWriting: in place, renamed over, created later, and a
// second in-place write after a rename (the new inode is watched).
func TestEveryWayOfWriting(t *testing.T) {
	dir := t.TempDir()
	group, passwd, policy := filepath.Join(dir, "group"), filepath.Join(dir, "passwd"), filepath.Join(dir, "policy.yaml")
	for _, f := range []string{group, passwd} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New(map[string]string{group: "group", passwd: "passwd", policy: "policy"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	unrelated := filepath.Join(dir, "shadow")
	os.WriteFile(unrelated, []byte("y\n"), 0o600)

	os.WriteFile(group, []byte("in place\n"), 0o644)
	want(t, next(t, w), "group")

	tmp := filepath.Join(dir, "passwd+")
	os.WriteFile(tmp, []byte("renamed\n"), 0o644)
	if err := os.Rename(tmp, passwd); err != nil {
		t.Fatal(err)
	}
	want(t, next(t, w), "passwd")
	os.WriteFile(passwd, []byte("in place on the new inode\n"), 0o644)
	want(t, next(t, w), "passwd")

	os.WriteFile(policy, []byte("version: 1\n"), 0o644)
	want(t, next(t, w), "policy")

	os.WriteFile(group, []byte("a\n"), 0o644)
	os.WriteFile(passwd, []byte("b\n"), 0o644)
	want(t, next(t, w), "group", "passwd")
}

// TestOpenWriterIsWaitedFor: a write not yet closed is reported once the
// file has been quiet for Quiet, not at its first byte.
func TestOpenWriterIsWaitedFor(t *testing.T) {
	w, paths := watchNew(t, "group")
	f := openForAppend(t, paths["group"])
	start := time.Now()
	for range 3 {
		f.WriteString("line\n")
		time.Sleep(Quiet / 2)
	}
	want(t, next(t, w), "group")
	// The writes end at Quiet; Next, called at 3*Quiet/2, must still wait
	// for quiet (a write is not a finished change).
	if took := time.Since(start); took < 2*Quiet {
		t.Errorf("reported after %v, before the writer was quiet for %v", took, Quiet)
	}
}

func TestNextStopsWithTheContext(t *testing.T) {
	w, err := New(map[string]string{filepath.Join(t.TempDir(), "group"): "group"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.Next(ctx); err == nil {
		t.Fatal("Next returned without a change")
	}
}

// TestEachFileIsWaitedFor: a closed write of one file does not cut short
// the wait for another that is still being written.
func TestEachFileIsWaitedFor(t *testing.T) {
	w, paths := watchNew(t, "group", "passwd")
	f := openForAppend(t, paths["group"])
	start := time.Now()
	f.WriteString("half a line") // still open
	os.WriteFile(paths["passwd"], []byte("done\n"), 0o644)
	want(t, next(t, w), "group", "passwd")
	if took := time.Since(start); took < Quiet {
		t.Errorf("reported after %v, while group was still being written (quiet: %v)", took, Quiet)
	}
}

// TestCloseEndsNext: Close wakes a waiting Next with an error.
func TestCloseEndsNext(t *testing.T) {
	w, err := New(map[string]string{filepath.Join(t.TempDir(), "group"): "group"})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.Next(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Next returned no error after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next still waits after Close")
	}
}

// watchNew makes empty files named by labels in a new directory and
// watches them (the watcher is closed when the test ends).
func watchNew(t *testing.T, labels ...string) (*Watcher, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	paths, watched := map[string]string{}, map[string]string{}
	for _, l := range labels {
		p := filepath.Join(dir, l)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		paths[l], watched[p] = p, l
	}
	w, err := New(watched)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, paths
}

// openForAppend opens path for writing, kept open until the test ends.
func openForAppend(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
