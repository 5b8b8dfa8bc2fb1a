package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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
	untilOK := fs.Duration("until-ok", 0, "print \"ready\", wait for a line on stdin, then try every 200µs until a cycle succeeds (at most this long); Seconds is the time from the line to the success")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sa := &unix.SockaddrInet4{Port: *port, Addr: loopback}
	if *untilOK > 0 {
		return emit(pollUntilOK(sa, *untilOK))
	}
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

// pollUntilOK waits for the go line on stdin, then cycles until one
// succeeds: how long a change (made by whoever sent the line) took to let
// this uid through. Count is 1 when it did within limit.
func pollUntilOK(sa *unix.SockaddrInet4, limit time.Duration) Sample {
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return Sample{Errors: 1, FirstError: "stdin: " + err.Error()}
	}
	start := time.Now()
	var s Sample
	for time.Since(start) < limit {
		err := cycle(sa, true)
		if err == nil {
			s.Count = 1
			break
		}
		s.Errors++
		if s.FirstError == "" {
			s.FirstError = err.Error()
		}
		time.Sleep(200 * time.Microsecond)
	}
	s.Seconds = time.Since(start).Seconds()
	return s
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

// MultiSample is one multi-namespace client run: per namespace, in the
// order given, the cycles completed, the failures and the time spent.
type MultiSample struct {
	Counts     []int64   `json:"counts"`
	Errors     []int64   `json:"errors"`
	Seconds    []float64 `json:"seconds"`
	Rates      []float64 `json:"rates"`
	FirstError []string  `json:"first_errors"`
}

// mclientMain is the `__mclient` role: one client for several worlds at
// once, interleaving them in short slices so that every configuration is
// measured under the same conditions, a few milliseconds apart. It runs as
// root (setns needs it) and gives each worker thread, before it makes any
// socket, the client's credentials as the kernel's owner match reads them:
// fsuid, fsgid and supplementary groups of the socket's file. A socket it
// makes is the client uid's to nftables and xtables alike; were it not, the
// policies would refuse it and the run would fail.
func mclientMain(args []string) int {
	fs := flag.NewFlagSet("__mclient", flag.ContinueOnError)
	port := fs.Int("port", Port, "TCP port on 127.0.0.1")
	nsList := fs.String("ns", "", "network namespaces (paths), comma-separated")
	uid := fs.Int("uid", -1, "client uid")
	gid := fs.Int("gid", -1, "client gid")
	groups := fs.String("groups", "", "supplementary gids, comma-separated")
	duration := fs.Duration("duration", time.Second, "total window (shared by the namespaces)")
	slice := fs.Duration("slice", 20*time.Millisecond, "time in one namespace before switching")
	conc := fs.Int("conc", 1, "worker threads")
	abort := fs.Bool("linger0", false, "close with SO_LINGER 0")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *uid <= 0 || *gid < 0 || *nsList == "" {
		fmt.Fprintln(os.Stderr, "__mclient: -ns, -uid and -gid are required (uid not 0)")
		return 2
	}
	var gids []int
	for _, g := range strings.Split(*groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			n, err := strconv.Atoi(g)
			if err != nil {
				fmt.Fprintln(os.Stderr, "__mclient: -groups:", err)
				return 2
			}
			gids = append(gids, n)
		}
	}
	var fds []int
	for _, p := range strings.Split(*nsList, ",") {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "__mclient:", p, err)
			return 1
		}
		fds = append(fds, fd)
	}
	n := len(fds)
	type acc struct {
		count, errs int64
		ns          time.Duration
		first       string
	}
	results := make([][]acc, max(*conc, 1))
	sa := &unix.SockaddrInet4{Port: *port, Addr: loopback}
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range results {
		results[w] = make([]acc, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// This thread's credentials change: it must never run anything
			// else, and it ends with the goroutine (no UnlockOSThread).
			runtime.LockOSThread()
			if err := setThreadCreds(*uid, *gid, gids); err != nil {
				failed.Store(err.Error())
				return
			}
			mine := results[w]
			for round := 0; time.Now().Before(deadline); round++ {
				for k := range n {
					i := (k + round + w) % n
					if err := unix.Setns(fds[i], unix.CLONE_NEWNET); err != nil {
						failed.Store("setns: " + err.Error())
						return
					}
					start := time.Now()
					end := start.Add(*slice)
					if end.After(deadline) {
						end = deadline
					}
					for time.Now().Before(end) {
						if err := cycle(sa, *abort); err != nil {
							mine[i].errs++
							if mine[i].first == "" {
								mine[i].first = err.Error()
							}
							continue
						}
						mine[i].count++
					}
					mine[i].ns += time.Since(start)
				}
			}
		}()
	}
	wg.Wait()
	if msg, ok := failed.Load().(string); ok {
		fmt.Fprintln(os.Stderr, "__mclient:", msg)
		return 1
	}
	out := MultiSample{Counts: make([]int64, n), Errors: make([]int64, n), Seconds: make([]float64, n), Rates: make([]float64, n), FirstError: make([]string, n)}
	for i := range n {
		var t time.Duration
		for w := range results {
			a := results[w][i]
			out.Counts[i] += a.count
			out.Errors[i] += a.errs
			t += a.ns
			if out.FirstError[i] == "" {
				out.FirstError[i] = a.first
			}
		}
		// Threads run side by side: the namespace's share of the window
		// is its time per thread.
		out.Seconds[i] = t.Seconds() / float64(len(results))
		if out.Seconds[i] > 0 {
			out.Rates[i] = float64(out.Counts[i]) / out.Seconds[i]
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 1
	}
	return 0
}

// setThreadCreds gives the calling thread (only) the supplementary groups,
// fsgid and fsuid of the client: the raw system calls act on one thread,
// unlike the C library's, which change every thread of the process.
func setThreadCreds(uid, gid int, groups []int) error {
	list := make([]uint32, len(groups))
	for i, g := range groups {
		list[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(list) > 0 {
		p = unsafe.Pointer(&list[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(list)), uintptr(p), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	unix.Setfsgid(gid)
	unix.Setfsuid(uid)
	// setfsuid and setfsgid report the previous value, not errors: read
	// them back (a second call with an invalid id returns the current one).
	if cur, _ := unix.SetfsuidRetUid(-1); cur != uid {
		return fmt.Errorf("setfsuid(%d): still %d", uid, cur)
	}
	if cur, _ := unix.SetfsgidRetGid(-1); cur != gid {
		return fmt.Errorf("setfsgid(%d): still %d", gid, cur)
	}
	return nil
}
