package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

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

func (a *app) exportCommand() *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print exactly the ruleset that apply would load",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := newBackend(format)
			if err != nil {
				return err
			}
			rs, err := a.load(cmd.Context(), file)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(a.stdout, b.Script(rs))
			return err
		},
	}
	policyFlag(cmd, &file)
	cmd.Flags().StringVar(&format, "format", "nft", "nft or iptables")
	return cmd
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
