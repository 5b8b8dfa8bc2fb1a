package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/lab"
)

// The hidden commands below are the lab's moving parts: they run inside the
// throwaway namespaces that `demo` and the kernel tests create.

func (a *app) probeCommand() *cobra.Command {
	var to string
	var timeout time.Duration
	var srcPort int
	cmd := &cobra.Command{
		Use:    "__probe",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, proto, ok := strings.Cut(to, "/")
			if !ok {
				return fmt.Errorf("--to %q: want ADDR:PORT/PROTO", to)
			}
			obs, detail := lab.Probe(cmd.Context(), proto, addr, srcPort, timeout)
			return json.NewEncoder(a.stdout).Encode(map[string]string{"observed": obs, "detail": detail})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "ADDR:PORT/PROTO")
	cmd.Flags().DurationVar(&timeout, "timeout", 400*time.Millisecond, "how long silence means drop")
	cmd.Flags().IntVar(&srcPort, "src-port", 0, "local port to send from")
	return cmd
}

func (a *app) listenCommand() *cobra.Command {
	var proto string
	var port int
	cmd := &cobra.Command{
		Use:    "__listen",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return lab.Listen(ctx, proto, port, func() { fmt.Fprintln(a.stdout, "ready") })
		},
	}
	cmd.Flags().StringVar(&proto, "proto", "tcp", "tcp or udp")
	cmd.Flags().IntVar(&port, "port", 0, "port")
	return cmd
}

func (a *app) labCommand() *cobra.Command {
	var inside string
	cmd := &cobra.Command{
		Use:    "__lab",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if inside == "" {
				return errors.New("__lab runs inside namespaces made by lab.Run")
			}
			sc, err := lab.ReadScenario(inside)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			rep, err := lab.Inside(cmd.Context(), self, sc)
			if err != nil {
				return err
			}
			return json.NewEncoder(a.stdout).Encode(rep)
		},
	}
	cmd.Flags().StringVar(&inside, "inside", "", "scenario file")
	return cmd
}
