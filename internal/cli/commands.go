package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/policy"
)

func (a *app) checkCommand() *cobra.Command {
	var file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Parse, resolve and lint the policy; print problems as FILE:LINE:COL: message",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := a.load(cmd.Context(), file)
			if asJSON {
				out := map[string]any{"file": file, "valid": err == nil, "problems": []*policy.Problem{}}
				var ps policy.Problems
				switch {
				case errors.As(err, &ps):
					out["problems"] = ps
				case err != nil:
					out["problems"] = []*policy.Problem{policy.NewProblem(file, policy.Pos{}, "%v", err)}
				default:
					out["rules"], out["profiles"] = len(rs.Rules), len(rs.Profiles)
				}
				if jerr := writeJSON(a.stdout, out); jerr != nil {
					return jerr
				}
				if err != nil {
					return &ExitError{Code: 1}
				}
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: valid, %d rules, %d profiles\n", file, len(rs.Rules), len(rs.Profiles))
			return nil
		},
	}
	policyFlag(cmd, &file)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) applyCommand() *cobra.Command {
	var file, backend string
	var confirm string
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Compile the policy and load it in one kernel transaction",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkBackend(backend); err != nil {
				return err
			}
			if confirm != "" {
				return errors.New("--confirm-within is not available yet; nothing was applied")
			}
			rs, err := a.load(cmd.Context(), file)
			if err != nil {
				return err
			}
			if err := nft.Load(cmd.Context(), nft.Script(rs), nft.HasUnits(rs)); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "applied %s: %d rules, %d profiles, table inet %s\n", file, len(rs.Rules), len(rs.Profiles), nft.Table)
			return nil
		},
	}
	policyFlag(cmd, &file)
	cmd.Flags().StringVar(&backend, "backend", "nft", "nft or iptables")
	cmd.Flags().StringVar(&confirm, "confirm-within", "", "roll back unless `ownerwall confirm` runs within this duration")
	return cmd
}

func checkBackend(b string) error {
	switch b {
	case "nft":
		return nil
	case "iptables":
		return errors.New("the iptables backend is not available yet; use --backend nft")
	}
	return fmt.Errorf("unknown backend %q (nft or iptables)", b)
}

func (a *app) exportCommand() *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print exactly the ruleset that apply would load",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkBackend(format); err != nil {
				return err
			}
			rs, err := a.load(cmd.Context(), file)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(a.stdout, nft.Script(rs))
			return err
		},
	}
	policyFlag(cmd, &file)
	cmd.Flags().StringVar(&format, "format", "nft", "nft or iptables")
	return cmd
}

func (a *app) flushCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Remove ownerwall's own ruleset, nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := nft.Load(cmd.Context(), nft.FlushScript(), false); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed table inet %s\n", nft.Table)
			return nil
		},
	}
}

func (a *app) statusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the live ruleset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			live, err := nft.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"backend": "nft", "loaded": live != "", "ruleset": live})
			}
			if live == "" {
				fmt.Fprintln(a.stdout, "no ownerwall ruleset is loaded")
				return nil
			}
			fmt.Fprint(a.stdout, live)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
