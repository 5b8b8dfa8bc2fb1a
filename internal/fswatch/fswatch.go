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
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &Watcher{fd: fd, labels: map[string]string{}, dirs: map[int]string{}, files: map[int]string{},
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
		w.watchFile(abs)
	}
	go w.read()
	return w, nil
}

// watchFile (re)watches path's current inode; a missing file is not an
// error (its directory says when it comes).
func (w *Watcher) watchFile(path string) {
	if wd, err := unix.InotifyAddWatch(w.fd, path, fileMask); err == nil {
		w.files[wd] = path
	}
}

// Close stops watching.
func (w *Watcher) Close() error { return unix.Close(w.fd) }

// read turns inotify records into labelled events until the descriptor
// is closed.
func (w *Watcher) read() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			if err == nil {
				err = errors.New("inotify: end of events")
			}
			w.errs <- fmt.Errorf("inotify: %w", err)
			close(w.raw)
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
			w.dispatch(int(ev.Wd), ev.Mask, name)
		}
	}
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
func (w *Watcher) dispatch(wd int, mask uint32, name string) {
	if mask&unix.IN_Q_OVERFLOW != 0 { // events were lost: anything may have changed
		for _, label := range w.labels {
			w.raw <- event{label: label, settled: true}
		}
		return
	}
	settled := mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_ATTRIB) != 0
	if dir, ok := w.dirs[wd]; ok {
		path := filepath.Join(dir, name)
		label, watched := w.labels[path]
		if !watched {
			return
		}
		if mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
			w.watchFile(path) // a new inode under the name
		}
		if mask&unix.IN_CLOSE_WRITE != 0 {
			return // the file watch reports it
		}
		w.raw <- event{label: label, settled: settled && mask&unix.IN_CREATE == 0}
		return
	}
	if path, ok := w.files[wd]; ok {
		if mask&unix.IN_IGNORED != 0 {
			delete(w.files, wd)
			return
		}
		w.raw <- event{label: w.labels[path], settled: settled}
	}
}

// Next waits for the next change and returns the labels of the files that
// changed, coalesced: after a closed write or a rename it waits Settle for
// more, after an unfinished write until the file is quiet for Quiet.
func (w *Watcher) Next(ctx context.Context) ([]string, error) {
	changed := map[string]bool{}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-w.raw:
			if !ok {
				return nil, <-w.errs
			}
			changed[ev.label] = true
			wait := Quiet
			if ev.settled {
				wait = Settle
			}
			timer = time.After(wait)
		case <-timer:
			out := make([]string, 0, len(changed))
			for l := range changed {
				out = append(out, l)
			}
			sort.Strings(out)
			return out, nil
		}
	}
}
