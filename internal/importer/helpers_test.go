package importer

import (
	"errors"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/policy"
)

// checkErrors checks what Import promises about an error: Errors, each
// FILE:LINE: message with a line >= 1.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not Errors: %v", err, err)
	}
	if len(es) == 0 {
		t.Fatal("empty Errors")
	}
	for _, e := range es {
		if e == nil || e.File == "" || e.Line < 1 || strings.TrimSpace(e.Msg) == "" || strings.Contains(e.Msg, "\n") {
			t.Errorf("malformed error %+v", e)
		}
	}
}

// checkPolicy checks what an imported policy must be beyond parsing.
func checkPolicy(t *testing.T, p *policy.Policy) {
	t.Helper()
	for _, r := range p.Rules {
		if r.Name == "" || len(r.Name) > maxNameLen {
			t.Errorf("rule %d: name %q", r.Index, r.Name)
		}
	}
}

func checkWarnings(t *testing.T, ws []Warning, files ...string) {
	t.Helper()
	for _, w := range ws {
		ok := false
		for _, f := range files {
			ok = ok || w.File == f
		}
		if !ok || w.Line < 1 || strings.TrimSpace(w.Msg) == "" || strings.Contains(w.Msg, "\n") {
			t.Errorf("malformed warning %+v", w)
		}
	}
}
