package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// run runs the command line as main does and returns exit status and
// output. Only commands that touch no kernel state are used here.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// numeric principals need no account: these policies resolve anywhere.
const numericPolicy = `version: 1
outbound: drop
rules:
  - {name: tunnel, to: {host: local, tcp: 992}, except: ["uid:0"], action: reject}
  - {name: web, to: {host: "192.0.2.0/24", tcp: [80, 443]}, who: ["uid:1000-1999"], action: accept}
`

var problemLine = regexp.MustCompile(`^\S+:\d+:\d+: \S`)

func TestCheck(t *testing.T) {
	good := writePolicy(t, numericPolicy)
	if code, out, errs := run(t, "check", "-f", good); code != 0 || !strings.Contains(out, "valid, 2 rules") || errs != "" {
		t.Errorf("check good: %d %q %q", code, out, errs)
	}
	bad := writePolicy(t, "version: 1\nrules:\n  - {to: {tcp: 0}, action: drop}\n  - {to: {tcp: 1}, serve: {tcp: 1}, action: drop}\n")
	code, out, errs := run(t, "check", "-f", bad)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 1 || out != "" || len(lines) != 2 {
		t.Fatalf("check bad: %d %q %q", code, out, errs)
	}
	for _, l := range lines {
		if !problemLine.MatchString(l) || !strings.HasPrefix(l, bad+":") {
			t.Errorf("not FILE:LINE:COL: %q", l)
		}
	}
	code, out, _ = run(t, "check", "-f", bad, "--json")
	var res struct {
		Valid    bool
		Problems []struct {
			Line, Col int
			Message   string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.Valid || len(res.Problems) != 2 || res.Problems[0].Line != 3 {
		t.Errorf("check --json: %d %v %s", code, err, out)
	}
}

func TestExportIsWhatApplyLoads(t *testing.T) {
	f := writePolicy(t, numericPolicy)
	code, out, errs := run(t, "export", "-f", f, "--format", "nft")
	if code != 0 || errs != "" {
		t.Fatalf("%d %s", code, errs)
	}
	for _, want := range []string{"add table inet ownerwall", "delete table inet ownerwall", "fib daddr type local", "ip daddr 192.0.2.0/24", "ct state established,related accept"} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %q", want)
		}
	}
	code, out, _ = run(t, "export", "-f", f, "--format", "iptables")
	if code != 0 || !strings.Contains(out, "*filter") || !strings.Contains(out, "-I OUTPUT 1 -j OWNERWALL") {
		t.Errorf("export iptables: %d\n%s", code, out)
	}
	if code, _, errs := run(t, "export", "-f", f, "--format", "pf"); code != 1 || !strings.Contains(errs, "unknown backend") {
		t.Errorf("unknown format: %d %q", code, errs)
	}
}

func TestExplainFromFile(t *testing.T) {
	f := writePolicy(t, numericPolicy)
	code, out, errs := run(t, "explain", "-f", f, "--uid", "1500", "--to", "192.0.2.9:443/tcp", "--json")
	var res struct {
		Verdict  string
		Rule     *string
		Position int
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Verdict != "accept" || res.Rule == nil || *res.Rule != "web" || res.Position != 2 {
		t.Errorf("explain: %d %v %s %s", code, err, out, errs)
	}
	code, out, _ = run(t, "explain", "-f", f, "--uid", "2500", "--to", "192.0.2.9:443/tcp", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Verdict != "drop" || res.Rule != nil {
		t.Errorf("explain default: %d %v %s", code, err, out)
	}
	code, out, _ = run(t, "explain", "-f", f, "--uid", "1000", "--to", "[::1]:992/tcp")
	if code != 0 || !strings.Contains(out, "REJECT") || !strings.Contains(out, `rule 1 "tunnel"`) {
		t.Errorf("explain text: %d %s", code, out)
	}
}

// TestBadArgumentsAreOneLine: whatever the arguments, one line on stderr
// and exit 1; no usage dump, no stack trace.
func TestBadArgumentsAreOneLine(t *testing.T) {
	f := writePolicy(t, numericPolicy)
	for _, args := range [][]string{
		{"frobnicate"},
		{"check", "--no-such-flag"},
		{"check", "-f", "/no/such/file.yaml"},
		{"explain", "-f", f},
		{"explain", "-f", f, "--uid", "1", "--to", "not-an-address"},
		{"explain", "-f", f, "--uid", "1", "--to", "[::1]:99999/tcp"},
		{"explain", "-f", f, "--uid", "1", "--to", "127.0.0.1:1/quic"},
		{"explain", "-f", f, "--uid", "99999999999", "--to", "127.0.0.1:1/tcp"},
		{"explain", "-f", f, "--uid", "1", "--serve", "80/icmp"},
		{"explain", "-f", f, "--uid", "1", "--to", "127.0.0.1:1/tcp", "--serve", "1/tcp"},
		{"apply", "-f", f, "--backend", "pf"},
		{"apply", "-f", f, "--confirm-within", "-5s"},
	} {
		code, _, errs := run(t, args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ownerwall: ") || strings.Contains(errs, "goroutine") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}
