package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Run builds the scenario's world in fresh network and mount namespaces and
// returns what it observed. self is the ownerwall binary: the world is run
// by `self __lab --inside`, under unshare(1).
func Run(ctx context.Context, self string, sc Scenario) (*Report, error) {
	dir, err := os.MkdirTemp("", "ownerwall-lab-")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "scenario.json")
	data, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--mount", "--propagation", "private", "--", self, "__lab", "--inside", file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("lab: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("lab: unreadable report: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return &rep, nil
}

// ReadScenario loads a scenario file written by Run.
func ReadScenario(file string) (Scenario, error) {
	var sc Scenario
	data, err := os.ReadFile(file)
	if err != nil {
		return sc, fmt.Errorf("lab: %w", err)
	}
	if err := json.Unmarshal(data, &sc); err != nil {
		return sc, fmt.Errorf("lab: %s: %w", file, err)
	}
	return sc, nil
}
