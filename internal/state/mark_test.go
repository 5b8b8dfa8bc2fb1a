package state

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ir"
)

func TestMarkFollows(t *testing.T) {
	m, err := MarkOf(41)
	if err != nil {
		t.Fatal(err)
	}
	if m.Boot == "" || m.Netns == "" {
		t.Fatalf("mark without boot or namespace: %+v", m)
	}
	next := m
	next.Generation = 42
	for _, c := range []struct {
		name    string
		after   Mark
		commits uint32
		want    bool
	}{
		{"our one commit", next, 1, true},
		{"no commit, none expected", m, 0, true},
		{"someone else's commit too", Mark{43, m.Boot, m.Netns}, 1, false},
		{"no commit where one was expected", m, 1, false},
		{"another boot, same number", Mark{42, "another-boot", m.Netns}, 1, false},
		{"another namespace", Mark{42, m.Boot, "net:[1]"}, 1, false},
	} {
		if got := c.after.Follows(m, c.commits); got != c.want {
			t.Errorf("%s: Follows = %v", c.name, got)
		}
	}
}

// TestDraftRemovesLeftovers: temporary files of a killed apply go at the
// next draft.
func TestDraftRemovesLeftovers(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	old := filepath.Join(s.Dir, ".applied.json.12345")
	os.WriteFile(old, []byte(`{"script":`), 0o600)
	if err := s.SaveApplied(&Applied{Backend: "nft", Script: "x\n", Ruleset: &ir.Ruleset{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the leftover %s is still there", old)
	}
}
