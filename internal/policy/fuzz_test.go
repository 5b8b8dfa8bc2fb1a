package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeeds are valid and invalid policies the fuzzer starts from; the
// committed corpus in testdata/fuzz/FuzzParse adds a few more.
var fuzzSeeds = []string{
	"",
	"version: 1\n",
	"version: 1\noutbound: drop\n",
	"version: 1\nservices:\n  t: {host: local, tcp: 992}\nrules:\n  - to: t\n    except: [root]\n    action: reject\n",
	"version: 1\nrules:\n  - serve: {tcp: any, udp: [53, \"6000-6010\"]}\n    who: [\"uid:1000-1999\", \"group:wheel\", \"gid:10\", \"unit:x.service\", everyone]\n    action: drop\n    log: true\n",
	"version: 1\nrules:\n  - to:\n      host: [local, 10.0.0.0/8, \"::ffff:127.0.0.1\", example.com]\n    action: reject\n",
	"version: 1\nrules:\n  - name: [a\n",
	"version: 1\n\tfoo: 1\n",
	"version: 1\nversion: 1\n",
	"version: 1\nrules:\n  - to: {tcp: 80}\n    serve: {tcp: 80}\n",
	"version: 1\nrules:\n  - {to: {tcp: 0}, action: allow, who: [1000, \"role:x\"]}\n",
	"version: 1\nservices:\n  a: &x {tcp: 80}\n  b: *x\n  c:\n    <<: *x\n",
	"- version: 1\n",
	"version: 1\n---\nversion: 2\n",
	"version: !!str 1\nrules: !!seq []\n",
	"? [a, b]\n: c\n",
	"version: 1\nrules:\n  - to: |\n      literal\n    action: drop\n",
	"version: 1\nrules:\n  -\n  - ~\n  - []\n",
	"\xff\xfe",
	"{{{{{{{{{{[[[[[[[[",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "spec-example.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err == nil {
			checkValidPolicy(t, p)
			return
		}
		if p != nil {
			t.Errorf("Parse returned a policy along with an error")
		}
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("error is %T, not policy.Problems: %v", err, err)
		}
		if len(ps) == 0 {
			t.Fatalf("empty Problems")
		}
		// YAML breaks lines at LF, CRLF and a lone CR.
		text := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n")
		lines := strings.Count(text, "\n") + 1
		beyond := false
		for _, pr := range ps {
			if pr == nil {
				t.Fatal("nil *Problem")
			}
			if pr.File != "fuzz.yaml" || pr.Line < 1 || pr.Col < 1 || strings.TrimSpace(pr.Msg) == "" {
				t.Errorf("malformed problem %+v", *pr)
			}
			beyond = beyond || pr.Line > lines
		}
		if beyond {
			if strings.Contains(string(data), "\r\n") {
				fixedBug(t, crlfBug)
			}
			t.Errorf("a problem lies beyond the file's %d lines:\n%v", lines, ps)
		}
	})
}

// checkValidPolicy checks what Parse promises about an accepted policy.
func checkValidPolicy(t *testing.T, p *Policy) {
	t.Helper()
	if p == nil {
		t.Fatal("nil policy and nil error")
	}
	if p.Version != 1 {
		t.Errorf("accepted version %d", p.Version)
	}
	validAction := func(a Action) bool { return a == Accept || a == Reject || a == Drop }
	if !validAction(p.Outbound) {
		t.Errorf("outbound %q", p.Outbound)
	}
	for i, r := range p.Rules {
		if r.Index != i+1 || r.Name == "" || !validAction(r.Action) || len(r.Who) == 0 || r.Dest == nil {
			t.Fatalf("rule %d malformed: %+v", i+1, r)
		}
		switch r.Dir {
		case To:
		case Serve:
			if r.Dest.AllProtocols() {
				t.Errorf("rule %d: serve without tcp or udp", i+1)
			}
			for _, h := range r.Dest.Hosts {
				if h.Kind != HostLocal {
					t.Errorf("rule %d: serve on host %+v", i+1, h)
				}
			}
		default:
			t.Errorf("rule %d: direction %q", i+1, r.Dir)
		}
		for _, ports := range []Ports{r.Dest.TCP, r.Dest.UDP} {
			for _, pr := range ports.Ranges {
				if pr.Lo == 0 || pr.Lo > pr.Hi {
					t.Errorf("rule %d: port range %+v", i+1, pr)
				}
			}
		}
		for _, who := range append(append([]Principal(nil), r.Who...), r.Except...) {
			if (who.Kind == KindUID || who.Kind == KindGID) && (who.Lo > who.Hi || who.Hi > MaxID) {
				t.Errorf("rule %d: principal %+v", i+1, who)
			}
		}
	}
}
