package nft

import (
	"os"
	"os/exec"
	"testing"
)

// TestGeneration: the generation moves with every committed change and
// only then. It runs itself again in a throwaway network namespace.
func TestGeneration(t *testing.T) {
	if os.Getenv("OWNERWALL_GEN_CHILD") == "" {
		if os.Geteuid() != 0 {
			if os.Getenv("CI") == "true" {
				t.Fatal("needs root (CI=true: a skip is a failure)")
			}
			t.Skip("needs root")
		}
		cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run", "^TestGeneration$", "-test.v")
		cmd.Env = append(os.Environ(), "OWNERWALL_GEN_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("in a new network namespace: %v\n%s", err, out)
		}
		return
	}
	g1, err := Generation()
	if err != nil {
		t.Fatal(err)
	}
	if g2, _ := Generation(); g2 != g1 {
		t.Errorf("generation moved from %d to %d without a change", g1, g2)
	}
	if out, err := exec.Command("nft", "add", "table", "inet", "gen_test").CombinedOutput(); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	g3, err := Generation()
	if err != nil || g3 == g1 {
		t.Errorf("after a change: generation %d (was %d), err %v", g3, g1, err)
	}
	if out, err := exec.Command("nft", "list", "ruleset").CombinedOutput(); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	if g4, _ := Generation(); g4 != g3 {
		t.Errorf("a listing moved the generation from %d to %d", g3, g4)
	}
}
