package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// background is a long-running command of a world (ownerwall watch): its
// stdout lines, as they come.
type background struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// bgStart starts req.Args in the background and returns its first line of
// output (ownerwall watch's report of its first apply) in Stdout.
func (w *worldState) bgStart(req Request) Response {
	if w.bg != nil {
		return Response{Error: "bg-start: one is running"}
	}
	cmd := exec.Command(req.Args[0], req.Args[1:]...)
	cmd.Env = w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Response{Error: err.Error()}
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return Response{Error: err.Error()}
	}
	bg := &background{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(bg.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			bg.lines <- sc.Text()
		}
		_ = cmd.Wait()
	}()
	w.bg = bg
	line, err := bg.next(req.Timeout)
	if err != nil {
		w.bgStop()
		return Response{Error: "bg-start: " + err.Error()}
	}
	return Response{Stdout: line}
}

// next is the background command's next line of output.
func (bg *background) next(timeout time.Duration) (string, error) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	select {
	case l := <-bg.lines:
		return l, nil
	case <-bg.done:
		return "", errors.New("the command ended")
	case <-time.After(timeout):
		return "", fmt.Errorf("no output in %v", timeout)
	}
}

func (w *worldState) bgStop() Response {
	if w.bg == nil {
		return Response{}
	}
	_ = w.bg.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.bg.done:
	case <-time.After(5 * time.Second):
		_ = w.bg.cmd.Process.Kill()
		<-w.bg.done
	}
	w.bg = nil
	return Response{}
}

// change measures how long a change of a file takes to let a uid through:
// it starts req.Args (a client with -until-ok, as that uid), waits until
// the client is ready, rewrites req.Path with req.From in place, tells the
// client to go, and returns the client's Sample in Stdout and, in Stderr,
// the background command's line about the change (its own account).
func (w *worldState) change(req Request) Response {
	if w.bg == nil {
		return Response{Error: "change: no background command"}
	}
	if len(req.Args) == 0 { // no client: the change, and the command's line about it
		data, err := os.ReadFile(req.From)
		if err == nil {
			err = writeInPlace(req.Path, data)
		}
		if err != nil {
			return Response{Error: err.Error()}
		}
		report, err := w.bg.next(req.Timeout)
		if err != nil {
			return Response{Error: "change: the background command: " + err.Error()}
		}
		return Response{Stderr: report}
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(req.Timeout, time.Minute))
	defer cancel()
	cmd := exec.CommandContext(ctx, req.Args[0], req.Args[1:]...)
	cmd.Env = w.env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Response{Error: err.Error()}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Response{Error: err.Error()}
	}
	if err := cmd.Start(); err != nil {
		return Response{Error: err.Error()}
	}
	defer cmd.Wait()
	rd := bufio.NewReader(stdout)
	if l, err := rd.ReadString('\n'); err != nil || strings.TrimSpace(l) != "ready" {
		return Response{Error: fmt.Sprintf("change: client not ready: %q %v", l, err)}
	}
	data, err := os.ReadFile(req.From)
	if err == nil {
		err = writeInPlace(req.Path, data)
	}
	if err != nil {
		return Response{Error: err.Error()}
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return Response{Error: err.Error()}
	}
	rest, _ := io.ReadAll(rd)
	var s Sample
	if err := json.Unmarshal(rest, &s); err != nil {
		return Response{Error: fmt.Sprintf("change: client said %q", rest)}
	}
	report, err := w.bg.next(req.Timeout)
	if err != nil {
		return Response{Error: "change: the background command: " + err.Error(), Stdout: string(rest)}
	}
	return Response{Stdout: string(rest), Stderr: report}
}
