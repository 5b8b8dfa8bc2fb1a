package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ownerwall/ownerwall/internal/lab"
)

// A world is one throwaway network + mount namespace, made by
// `unshare --net --mount --propagation private -- SELF __world`: its own
// loopback, its own (empty) netfilter, and the generated /etc/passwd and
// /etc/group bound over the host's, visible only inside it. Everything that
// loads rules or makes traffic runs in a world; the coordinator only talks
// to it over a pipe, one JSON request and one JSON response per line.
//
// The world dies with its stdin (the coordinator's end of the pipe) and
// with its parent (PR_SET_PDEATHSIG), and every command it runs is bounded
// by a timeout.

// Request is one instruction to a world.
type Request struct {
	Op string `json:"op"` // setup, exec, write, bg-start, bg-stop, change, quit

	// setup
	Dir     string   `json:"dir,omitempty"`     // the world's directory: passwd, group, bin/, state/
	Flavour string   `json:"flavour,omitempty"` // iptables flavour for PATH: "", "legacy" or "nft"
	Server  []string `json:"server,omitempty"`  // the listener's command line

	// exec
	Args       []string      `json:"args,omitempty"`
	StdinFile  string        `json:"stdin_file,omitempty"`
	StdoutFile string        `json:"stdout_file,omitempty"` // stdout goes there instead of the response
	Timeout    time.Duration `json:"timeout,omitempty"`

	// write: copy From over Path, in place (a bind mount follows the inode)
	Path string `json:"path,omitempty"`
	From string `json:"from,omitempty"`
}

// Response is a world's answer.
type Response struct {
	Error    string  `json:"error,omitempty"`
	Exit     int     `json:"exit"`
	WallMS   float64 `json:"wall_ms"`
	MaxRSSKB int64   `json:"max_rss_kb"`        // the child's (and its waited-for children's) peak RSS
	UserMS   float64 `json:"user_ms,omitempty"` // the child's CPU time
	SysMS    float64 `json:"sys_ms,omitempty"`
	Pid      int     `json:"pid,omitempty"` // setup: the listener's pid
	Stdout   string  `json:"stdout,omitempty"`
	Stderr   string  `json:"stderr,omitempty"`
}

type worldState struct {
	dir    string
	env    []string
	server *exec.Cmd
	srvIn  io.WriteCloser
	bg     *background // a long-running command (ownerwall watch), if any
}

// worldMain is the `__world` role: it refuses to run in the host's own
// network namespace.
func worldMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "__world takes the coordinator's network namespace (net:[inode]) as its argument")
		return 2
	}
	if err := mustBeThrowaway(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, "world:", err)
		return 1
	}
	// When the coordinator dies, or someone interrupts the world, kill
	// everything it started, detached ownerwall workers included.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		<-sigs
		killNamespace()
		os.Exit(1)
	}()
	if os.Getppid() == 1 {
		killNamespace() // the coordinator died before the signal could be armed
		return 1
	}
	w := &worldState{}
	defer w.close()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req Request
		var resp Response
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else if req.Op == "quit" {
			_ = out.Encode(resp)
			return 0
		} else {
			resp = w.handle(req)
		}
		if err := out.Encode(resp); err != nil {
			return 1
		}
	}
	return 0
}

// mustBeThrowaway checks that this process is neither in the network
// namespace of the coordinator that started it nor in PID 1's (when that
// can be read): the world loads firewall rules, never on the host.
func mustBeThrowaway(coordinator string) error {
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil || !strings.HasPrefix(coordinator, "net:[") {
		return fmt.Errorf("cannot compare network namespaces (%q, %v)", coordinator, err)
	}
	if own == coordinator {
		return errors.New("refusing to run in the coordinator's network namespace")
	}
	if host, err := os.Readlink("/proc/1/ns/net"); err == nil && own == host {
		return errors.New("refusing to run in PID 1's network namespace")
	}
	return nil
}

func (w *worldState) handle(req Request) Response {
	switch req.Op {
	case "setup":
		if err := w.setup(req); err != nil {
			return Response{Error: err.Error()}
		}
		if w.server != nil {
			return Response{Pid: w.server.Process.Pid}
		}
		return Response{}
	case "exec":
		return w.exec(req)
	case "bg-start":
		return w.bgStart(req)
	case "bg-stop":
		return w.bgStop()
	case "change":
		return w.change(req)
	case "write":
		data, err := os.ReadFile(req.From)
		if err == nil {
			err = writeInPlace(req.Path, data)
		}
		if err != nil {
			return Response{Error: err.Error()}
		}
		return Response{}
	}
	return Response{Error: "unknown op " + req.Op}
}

// writeInPlace rewrites path's content without replacing its inode, so a
// bind mount of it shows the new content.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (w *worldState) setup(req Request) error {
	w.dir = req.Dir
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	// Per-namespace sysctls: the widest ephemeral range, and reuse of the
	// client's own TIME_WAIT tuples (belt and braces: the server closes
	// first, so the client holds none).
	for file, val := range map[string]string{
		"/proc/sys/net/ipv4/ip_local_port_range": "1024 65535",
		"/proc/sys/net/ipv4/tcp_tw_reuse":        "1",
	} {
		if err := os.WriteFile(file, []byte(val), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", file, err)
		}
	}
	for _, name := range []string{"passwd", "group", "nsswitch.conf"} {
		src, target := filepath.Join(w.dir, name), "/etc/"+name
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", src, target, err)
		}
	}
	bin := filepath.Join(w.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if f := req.Flavour; f != "" {
		multi := "/usr/sbin/xtables-" + f + "-multi"
		if _, err := os.Stat(multi); err != nil {
			return fmt.Errorf("iptables flavour %s: %w", f, err)
		}
		for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
			if err := os.Symlink(multi, filepath.Join(bin, n)); err != nil && !os.IsExist(err) {
				return err
			}
		}
	}
	w.env = append(os.Environ(),
		"PATH="+bin+":"+os.Getenv("PATH"),
		"OWNERWALL_STATE_DIR="+filepath.Join(w.dir, "state"),
		"LC_ALL=C")
	if len(req.Server) > 0 {
		return w.startServer(req.Server)
	}
	return nil
}

func (w *worldState) startServer(args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = w.env
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	w.server, w.srvIn = cmd, stdin
	if err := lab.WaitReady(context.Background(), stdout, 10*time.Second); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// exec runs one command in the world, bounded by its timeout, and reports
// its wall time, peak RSS and output.
func (w *worldState) exec(req Request) Response {
	if len(req.Args) == 0 {
		return Response{Error: "exec: no command"}
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, req.Args[0], req.Args[1:]...)
	cmd.Env = w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A killed command's detached children (ownerwall's worker) may hold
	// its output open: stop waiting for them soon after the kill.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if req.StdoutFile != "" {
		f, err := os.Create(req.StdoutFile)
		if err != nil {
			return Response{Error: err.Error()}
		}
		defer f.Close()
		cmd.Stdout = f
	}
	if req.StdinFile != "" {
		f, err := os.Open(req.StdinFile)
		if err != nil {
			return Response{Error: err.Error()}
		}
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	err := cmd.Run()
	resp := Response{WallMS: float64(time.Since(start).Microseconds()) / 1000}
	if cmd.ProcessState != nil {
		resp.Exit = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			resp.MaxRSSKB = ru.Maxrss
		}
		resp.UserMS = float64(cmd.ProcessState.UserTime().Microseconds()) / 1000
		resp.SysMS = float64(cmd.ProcessState.SystemTime().Microseconds()) / 1000
	}
	resp.Stdout, resp.Stderr = clipText(stdout.String(), 1<<20), clipText(stderr.String(), 4096)
	if ctx.Err() != nil {
		// What the command left running (ownerwall's detached worker and
		// its nft or iptables-restore) must not eat the CPU of the samples.
		keep := 0
		if w.server != nil {
			keep = w.server.Process.Pid
		}
		killNamespace(keep)
		resp.Error = fmt.Sprintf("%s: timed out after %s", req.Args[0], timeout)
	} else if err != nil && resp.Exit == 0 {
		resp.Error = err.Error()
	} else if err != nil {
		resp.Error = fmt.Sprintf("%s exited %d: %s", strings.Join(req.Args, " "), resp.Exit, strings.TrimSpace(clipText(stderr.String(), 600)))
	}
	return resp
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (w *worldState) close() {
	defer killNamespace()
	w.bgStop()
	if w.server != nil {
		_ = w.srvIn.Close()
		done := make(chan struct{})
		go func() { _ = w.server.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = w.server.Process.Kill()
			<-done
		}
	}
}

// worldClient is the coordinator's handle on a world.
type worldClient struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
}

// startWorld starts `unshare --net --mount --propagation private -- self __world`.
func startWorld(name, self string) (*worldClient, error) {
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "--", self, "__world", own)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("world %s: %w", name, err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	c := &worldClient{name: name, cmd: cmd, in: in, out: sc}
	liveWorlds.Lock()
	liveWorlds.m[c] = true
	liveWorlds.Unlock()
	return c, nil
}

// liveWorlds are the worlds not closed yet, for terminateWorlds.
var liveWorlds = struct {
	sync.Mutex
	m map[*worldClient]bool
}{m: map[*worldClient]bool{}}

// terminateWorlds asks every live world to kill what it started and exit
// (on an interrupt): whatever call is waiting on one then fails.
func terminateWorlds() {
	liveWorlds.Lock()
	defer liveWorlds.Unlock()
	for c := range liveWorlds.m {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
}

func (c *worldClient) call(req Request) (Response, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := c.in.Write(append(data, '\n')); err != nil {
		return Response{}, fmt.Errorf("world %s: %w", c.name, err)
	}
	if !c.out.Scan() {
		return Response{}, fmt.Errorf("world %s died: %v", c.name, c.out.Err())
	}
	var resp Response
	if err := json.Unmarshal(c.out.Bytes(), &resp); err != nil {
		return Response{}, fmt.Errorf("world %s: %w", c.name, err)
	}
	return resp, nil
}

// run is call for exec, with the response's error as an error.
func (c *worldClient) run(timeout time.Duration, args ...string) (Response, error) {
	resp, err := c.call(Request{Op: "exec", Args: args, Timeout: timeout})
	if err == nil && resp.Error != "" {
		err = fmt.Errorf("world %s: %s", c.name, resp.Error)
	}
	return resp, err
}

func (c *worldClient) close() {
	liveWorlds.Lock()
	delete(liveWorlds.m, c)
	liveWorlds.Unlock()
	_, _ = c.call(Request{Op: "quit"})
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// killNamespace kills every other process in this network namespace: what
// the world started and left behind (a timed-out command, ownerwall's
// detached worker). The namespace is the world's own, so they are all the
// benchmark's.
func killNamespace(keep ...int) {
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || slices.Contains(keep, pid) {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && ns == own {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}
