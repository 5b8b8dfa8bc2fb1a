package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The traffic: a root listener on 127.0.0.1 that accepts, writes one byte
// and closes; a client that connects, reads until EOF and closes, as many
// times as it can in a fixed window. Both use raw blocking system calls, one
// OS thread per worker, so that the Go runtime adds as little as possible
// to the path that the firewall is measured against.
//
// The server closes first, so TIME_WAIT sits on the server's side
// (127.0.0.1:Port, client port) and never holds a client's ephemeral port:
// a new SYN for a tuple in TIME_WAIT is accepted (timestamps are on), and
// the client never runs out of ports however many connections it makes.

var loopback = [4]byte{127, 0, 0, 1}

// serverMain is the `__server` role: it prints "ready" once listening and
// serves until its stdin closes.
func serverMain(args []string) int {
	fs := flag.NewFlagSet("__server", flag.ContinueOnError)
	port := fs.Int("port", Port, "TCP port on 127.0.0.1")
	threads := fs.Int("threads", 2, "accepting threads")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server: socket:", err)
		return 1
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: *port, Addr: loopback}); err != nil {
		fmt.Fprintln(os.Stderr, "server: bind:", err)
		return 1
	}
	if err := unix.Listen(fd, 4096); err != nil {
		fmt.Fprintln(os.Stderr, "server: listen:", err)
		return 1
	}
	for range *threads {
		go func() {
			runtime.LockOSThread()
			greeting := []byte{'x'}
			for {
				nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
				if err != nil {
					if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) || errors.Is(err, unix.EMFILE) {
						continue
					}
					fmt.Fprintln(os.Stderr, "server: accept:", err)
					os.Exit(1)
				}
				_, _ = unix.Write(nfd, greeting)
				_ = unix.Close(nfd)
			}
		}()
	}
	fmt.Println("ready")
	// Serve until the world closes our stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// Sample is one client window's outcome.
type Sample struct {
	Count   int64   `json:"count"`   // completed connect/read/close cycles
	Errors  int64   `json:"errors"`  // cycles that failed (refused, timed out)
	Seconds float64 `json:"seconds"` // the window
	Rate    float64 `json:"rate"`    // Count / Seconds
	// FirstError is the first failure, if any (e.g. "connection refused"
	// for a uid the configuration refuses).
	FirstError string `json:"first_error,omitempty"`
	// Background is the share of all CPUs that other processes used
	// during the window (filled in by the coordinator).
	Background float64 `json:"background,omitempty"`
}

// clientMain is the `__client` role: it prints one Sample as JSON.
func clientMain(args []string) int {
	fs := flag.NewFlagSet("__client", flag.ContinueOnError)
	port := fs.Int("port", Port, "TCP port on 127.0.0.1")
	duration := fs.Duration("duration", time.Second, "measuring window")
	conc := fs.Int("conc", 1, "concurrent connections (one thread each)")
	once := fs.Bool("once", false, "one attempt: count 1 or error 1")
	abort := fs.Bool("linger0", false, "close with SO_LINGER 0 (RST) after EOF: no TIME_WAIT anywhere")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sa := &unix.SockaddrInet4{Port: *port, Addr: loopback}
	if *once {
		s := Sample{Seconds: 0}
		if err := cycle(sa, *abort); err != nil {
			s.Errors, s.FirstError = 1, err.Error()
		} else {
			s.Count = 1
		}
		return emit(s)
	}
	var count, errs atomic.Int64
	var first sync.Once
	var firstErr string
	start := time.Now()
	deadline := start.Add(*duration)
	var wg sync.WaitGroup
	for range max(*conc, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			var n, e int64
			for time.Now().Before(deadline) {
				if err := cycle(sa, *abort); err != nil {
					e++
					first.Do(func() { firstErr = err.Error() })
					if e > 1000 && n == 0 {
						break // refused throughout: no point hammering
					}
					continue
				}
				n++
			}
			count.Add(n)
			errs.Add(e)
		}()
	}
	wg.Wait()
	secs := deadline.Sub(start).Seconds()
	s := Sample{Count: count.Load(), Errors: errs.Load(), Seconds: secs, FirstError: firstErr}
	s.Rate = float64(s.Count) / secs
	return emit(s)
}

func emit(s Sample) int {
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		return 1
	}
	return 0
}

var oneSecond = unix.Timeval{Sec: 1}

// cycle is one connect, read until EOF, close.
func cycle(sa *unix.SockaddrInet4, abort bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	// Bounded waits: SO_SNDTIMEO bounds connect, SO_RCVTIMEO the reads.
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &oneSecond)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &oneSecond)
	for {
		err = unix.Connect(fd, sa)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var buf [16]byte
	got := 0
	for {
		n, err := unix.Read(fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			break
		}
		got += n
	}
	if got == 0 {
		return errors.New("read: EOF before the greeting")
	}
	if abort {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	return nil
}
