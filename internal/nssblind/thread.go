package nssblind

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Options say what else the blind thread gets.
type Options struct {
	// NewNet puts the thread in a new, empty network namespace (a scratch
	// place to load a ruleset and list it back).
	NewNet bool
	// Binds are extra bind mounts, source -> target (a hybrid host's
	// cgroup2 at /sys/fs/cgroup, for nft to resolve unit paths).
	Binds map[string]string
}

// Do runs fn on an OS thread of its own, in a private mount namespace
// where /etc/passwd and /etc/group are empty, nscd's socket is not one and
// nsswitch.conf names a source that does not exist. Commands fn starts
// (os/exec forks from the calling thread) run there too; nothing else of
// the process does. This costs a few system calls, where Command costs
// unshare(1), sh and three mount(1) processes (about 12 ms a load).
//
// The thread is never handed back to the Go scheduler: it ends with fn,
// and its namespaces with it.
func Do(o Options, fn func() error) error {
	// The nsswitch.conf to bind is a temporary file; what ends up bound is
	// checked to be that very file (same device and inode as the open
	// descriptor), whatever happened to its name meanwhile (a TMPDIR
	// someone else can write to).
	nss, err := os.CreateTemp("", "ownerwall-nsswitch-*.conf")
	if err != nil {
		return fmt.Errorf("nsswitch for a blind command: %w", err)
	}
	defer os.Remove(nss.Name())
	defer nss.Close()
	if _, err := nss.WriteString(nsswitch); err != nil {
		return fmt.Errorf("nsswitch for a blind command: %w", err)
	}
	var want unix.Stat_t
	if err := unix.Fstat(int(nss.Fd()), &want); err != nil {
		return fmt.Errorf("nsswitch for a blind command: %w", err)
	}
	return onSpareThread(func() error {
		if err := blind(o, nss.Name()); err != nil {
			return err
		}
		var got unix.Stat_t // (a host without nsswitch.conf uses glibc's defaults: files)
		if err := unix.Stat("/etc/nsswitch.conf", &got); err == nil && (got.Dev != want.Dev || got.Ino != want.Ino) {
			return errors.New("blind to the accounts: /etc/nsswitch.conf is not the file written")
		}
		return fn()
	})
}

// onSpareThread runs fn on an OS thread locked to it that is not the
// process's main thread, and lets the thread end with fn. (The main
// thread's namespaces are what /proc/self shows of the whole process, and
// Go parks rather than ends it.)
func onSpareThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // and never unlocked: the thread ends with this goroutine
		if unix.Gettid() != unix.Getpid() {
			done <- fn()
			return
		}
		// On the main thread: hold it, so that the next goroutine lands on
		// another one, and give the main thread back afterwards.
		inner := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			if unix.Gettid() == unix.Getpid() {
				inner <- fmt.Errorf("blind to the accounts: no thread but the main one")
				return
			}
			inner <- fn()
		}()
		err := <-inner
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// blind turns the calling thread's view of the accounts off; nss is the
// nsswitch.conf to bind.
func blind(o Options, nss string) error {
	flags := unix.CLONE_NEWNS
	if o.NewNet {
		flags |= unix.CLONE_NEWNET
	}
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("blind to the accounts: unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("blind to the accounts: %w", err)
	}
	binds := [][2]string{{os.DevNull, "/etc/passwd"}, {os.DevNull, "/etc/group"}, {nss, "/etc/nsswitch.conf"}}
	for src, target := range o.Binds {
		binds = append(binds, [2]string{src, target})
	}
	for _, b := range binds {
		if _, err := os.Stat(b[1]); os.IsNotExist(err) {
			continue
		}
		if err := unix.Mount(b[0], b[1], "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("blind to the accounts: bind %s on %s: %w", b[0], b[1], err)
		}
	}
	if fi, err := os.Stat(nscdSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = unix.Mount(os.DevNull, nscdSocket, "", unix.MS_BIND, "") // speed only
	}
	return nil
}

const nscdSocket = "/run/nscd/socket"
