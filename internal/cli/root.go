// Package cli is ownerwall's command line: flags in, run functions out.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// DefaultPolicy is where the policy lives unless -f says otherwise.
const DefaultPolicy = "/etc/ownerwall/policy.yaml"

// ExitError carries a specific exit status (plan's 2, say) up to main.
type ExitError struct {
	Code int
	Err  error // may be nil: nothing more to print
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// app is what every command shares: where output goes, and how identities
// are resolved (swappable in tests).
type app struct {
	stdout, stderr io.Writer
	env            compile.Env
	log            *slog.Logger
	records        *recordCache // nil but in long-running commands
}

// Main runs ownerwall with args and returns the process exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A bug must still end in one line, not a stack trace.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "ownerwall: internal error (please report it): %v\n", r)
			code = 1
		}
	}()
	a := &app{
		stdout: stdout,
		stderr: stderr,
		env:    compile.Env{Dir: ident.NewNSS(), Units: ident.Systemd{}, Hosts: ident.Resolver{}},
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()})),
	}
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			a.printError(ee.Err)
		}
		return ee.Code
	}
	a.printError(err)
	return 1
}

// logLevel is warn, or what OWNERWALL_LOG says (debug shows where an
// apply spends its time).
func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("OWNERWALL_LOG"))); err != nil {
		return slog.LevelWarn
	}
	return l
}

// phase logs, at debug level, how long a step took since start.
func (a *app) phase(ctx context.Context, name string, start time.Time) {
	a.log.DebugContext(ctx, "phase", "step", name, "ms", float64(time.Since(start).Microseconds())/1000)
}

func (a *app) printError(err error) {
	var ps policy.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(a.stderr, p.Error())
		}
		return
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " | ")
	fmt.Fprintln(a.stderr, "ownerwall: "+msg)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ownerwall",
		Short:         "Who on this host may connect where: owner-match firewall policies, compiled, explained and proven",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(
		a.checkCommand(),
		a.applyCommand(),
		a.exportCommand(),
		a.flushCommand(),
		a.confirmCommand(),
		a.restoreCommand(),
		a.planCommand(),
		a.importCommand(),
		a.rollbackWatchdogCommand(),
		a.workCommand(),
		a.explainCommand(),
		a.statusCommand(),
		a.demoCommand(),
		a.probeCommand(),
		a.listenCommand(),
		a.labCommand(),
		a.watchCommand(),
	)
	return root
}

// load reads, parses and compiles a policy file.
func (a *app) load(ctx context.Context, file string) (*ir.Ruleset, error) {
	data, err := readPolicy(file)
	if err != nil {
		return nil, err
	}
	return a.compileData(ctx, file, data)
}

// compileData parses and compiles the policy text data of file.
func (a *app) compileData(ctx context.Context, file string, data []byte) (*ir.Ruleset, error) {
	start := time.Now()
	p, err := policy.Parse(file, data)
	if err != nil {
		return nil, err
	}
	a.phase(ctx, "parse", start)
	start = time.Now()
	rs, err := compile.Compile(ctx, p, a.env)
	a.phase(ctx, "compile", start)
	return rs, err
}

// readPolicy reads a policy file, at most one byte past the size limit
// (which policy.Parse then reports).
func readPolicy(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", file, err)
	}
	return data, nil
}

func policyFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVarP(file, "file", "f", DefaultPolicy, "policy file")
}
