// Package fswatch reports changes to a few named files however they are
// written: in place (`cat > /etc/group`, a bind-mounted file), or by a new
// file renamed over the old one (vigr, usermod, gpasswd, editors). Each
// file is watched twice with inotify: the file itself (its inode: writes)
// and its directory (its name: a new inode renamed or created there).
package fswatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Quiet is how long a file must see no write before a change that was not
// closed is reported: a writer that keeps the file open is given time to
// finish. A closed write or a rename is reported at once (after Settle).
const (
	Quiet  = 50 * time.Millisecond
	Settle = 2 * time.Millisecond
)

const (
	fileMask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	dirMask  = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_DELETE | unix.IN_MOVED_FROM
)

// Watcher watches files, each under a label.
type Watcher struct {
	fd     int
	f      *os.File          // fd, non-blocking: Close wakes the reader
	labels map[string]string // absolute path -> label
	dirs   map[int]string    // dir watch descriptor -> directory
	files  map[int]string    // file watch descriptor -> path
	raw    chan event
	errs   chan error
}

type event struct {
	label   string
	settled bool // closed after writing, renamed, created or removed
}

// New watches the files of paths (path -> label). A file may be missing:
// its directory is watched, and the file from when it appears.
func New(paths map[string]string) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &Watcher{fd: fd, f: os.NewFile(uintptr(fd), "inotify"), labels: map[string]string{}, dirs: map[int]string{}, files: map[int]string{},
		raw: make(chan event, 64), errs: make(chan error, 1)}
	for p, label := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		w.labels[abs] = label
		dir := filepath.Dir(abs)
		wd, err := unix.InotifyAddWatch(fd, dir, dirMask)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", dir, err)
		}
		w.dirs[wd] = dir
		if err := w.watchFile(abs); err != nil {
			w.Close()
			return nil, err
		}
	}
	go w.read()
	return w, nil
}

// watchFile (re)watches path's current inode; a missing file is not an
// error (its directory says when it comes), running out of watches is.
func (w *Watcher) watchFile(path string) error {
	wd, err := unix.InotifyAddWatch(w.fd, path, fileMask)
	switch {
	case err == nil:
		w.files[wd] = path
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("watch %s: %w", path, err)
	}
	return nil
}

// watching reports whether path's inode has a watch.
func (w *Watcher) watching(path string) bool {
	for _, p := range w.files {
		if p == path {
			return true
		}
	}
	return false
}

// Close stops watching; Next then returns an error.
func (w *Watcher) Close() error { return w.f.Close() }

// read turns inotify records into labelled events until the descriptor
// is closed.
func (w *Watcher) read() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil || n <= 0 {
			if err == nil {
				err = errors.New("end of events")
			}
			w.fail(fmt.Errorf("inotify: %w", err))
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = string(raw[:clen(raw)])
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if err := w.dispatch(int(ev.Wd), ev.Mask, name); err != nil {
				w.fail(err)
				return
			}
		}
	}
}

// fail ends the events with err: Next returns it.
func (w *Watcher) fail(err error) {
	w.errs <- err
	close(w.raw)
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// dispatch maps one inotify record to the watched file it concerns.
func (w *Watcher) dispatch(wd int, mask uint32, name string) error {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		// Events were lost: anything may have changed, and a file may
		// have a new inode that has no watch yet.
		for path, label := range w.labels {
			if !w.watching(path) {
				if err := w.watchFile(path); err != nil {
					return err
				}
			}
			w.raw <- event{label: label, settled: true}
		}
		return nil
	}
	settled := mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_ATTRIB) != 0
	if dir, ok := w.dirs[wd]; ok {
		path := filepath.Join(dir, name)
		label, watched := w.labels[path]
		if !watched {
			return nil
		}
		if mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
			if err := w.watchFile(path); err != nil { // a new inode under the name
				return err
			}
		}
		if mask&unix.IN_CLOSE_WRITE != 0 && w.watching(path) {
			return nil // the file's own watch reports it
		}
		w.raw <- event{label: label, settled: settled && mask&unix.IN_CREATE == 0}
		return nil
	}
	if path, ok := w.files[wd]; ok {
		if mask&unix.IN_IGNORED != 0 {
			delete(w.files, wd)
			return nil
		}
		w.raw <- event{label: w.labels[path], settled: settled}
	}
	return nil
}

// Next waits for the next change and returns the labels of the files that
// changed, coalesced. Each file is waited for on its own: Settle after a
// closed write or a rename, until it has been quiet for Quiet after a
// write still open; the labels come when every changed file is done.
func (w *Watcher) Next(ctx context.Context) ([]string, error) {
	due := map[string]time.Time{} // label -> when its change counts as done
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-w.raw:
			if !ok {
				return nil, <-w.errs
			}
			wait := Quiet
			if ev.settled {
				wait = Settle
			}
			due[ev.label] = time.Now().Add(wait)
			last := time.Time{}
			for _, t := range due {
				if t.After(last) {
					last = t
				}
			}
			if timer != nil {
				timer.Stop()
			}
			timer = time.NewTimer(time.Until(last))
			fire = timer.C
		case <-fire:
			out := make([]string, 0, len(due))
			for l := range due {
				out = append(out, l)
			}
			sort.Strings(out)
			return out, nil
		}
	}
}
