package state

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// TestDraftKeepsEveryField: a record written as a draft reads back with
// every field, including those set after the draft began.
func TestDraftKeepsEveryField(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	mark := &Mark{Generation: 42, Boot: "b", Netns: "net:[1]"}
	rs := &ir.Ruleset{Source: "p.yaml", Outbound: ir.Drop, Stateful: true,
		Rules: []ir.Rule{{Index: 1, Name: "a <b> & \"c\"", Dir: ir.To, Action: ir.Accept}}}
	d := s.Draft(func() string { return "add table inet ownerwall\n<&>\n" }, rs)
	in := &Applied{Backend: "nft", Flavour: "nftables v1.0.6", Policy: "/etc/ownerwall/policy.yaml", SHA256: "ab",
		AppliedAt: time.Unix(1700000000, 0).UTC(), Script: "add table inet ownerwall\n<&>\n", Listing: "table ...",
		Mark: mark, Ruleset: rs}
	if err := d.Commit(in); err != nil {
		t.Fatal(err)
	}
	out, err := s.LoadApplied()
	if err != nil {
		t.Fatal(err)
	}
	in.Format = 1
	want, _ := json.Marshal(in)
	got, _ := json.Marshal(out)
	if string(got) != string(want) {
		t.Errorf("round trip:\n got %s\nwant %s", got, want)
	}
	leftovers(t, s.Dir)
}

// TestDraftDiscardKeepsTheRecord: a discarded draft (the load failed)
// leaves the last record as it was, and no temporary file.
func TestDraftDiscardKeepsTheRecord(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := s.SaveApplied(&Applied{Backend: "nft", Script: "old\n", Ruleset: &ir.Ruleset{}}); err != nil {
		t.Fatal(err)
	}
	s.Draft(func() string { return "new\n" }, &ir.Ruleset{}).Discard()
	out, err := s.LoadApplied()
	if err != nil || out.Script != "old\n" {
		t.Fatalf("after discard: %+v %v", out, err)
	}
	leftovers(t, s.Dir)
}

// TestAppliedRestCoversApplied: every field of Applied but the two a
// draft writes first is in appliedRest, under the same JSON name (a new
// field added to one only would silently not be saved).
func TestAppliedRestCoversApplied(t *testing.T) {
	tags := func(v any) map[string]bool {
		out := map[string]bool{}
		ty := reflect.TypeOf(v)
		for i := range ty.NumField() {
			out[ty.Field(i).Tag.Get("json")] = true
		}
		return out
	}
	full, rest := tags(Applied{}), tags(appliedRest{})
	for tag := range full {
		name := strings.Split(tag, ",")[0]
		if name == "script" || name == "ruleset" {
			continue
		}
		if !rest[tag] {
			t.Errorf("Applied's field %q is not in appliedRest", tag)
		}
	}
	if len(rest) != len(full)-2 {
		t.Errorf("appliedRest has %d fields, Applied %d", len(rest), len(full))
	}
}

func leftovers(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("a temporary file was left behind: %s", filepath.Join(dir, e.Name()))
		}
	}
}
