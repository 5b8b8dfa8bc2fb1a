package compile

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// benchWorld is the bench's shape B (20 rules over uid ranges and ten
// groups of 10,000 members) or A (one rule per account), with n accounts.
func benchWorld(n int, perAccount bool) (passwd, group, src string) {
	var pw, gr, pol strings.Builder
	pw.WriteString("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&pw, "bu%06d:x:%d:100::/nonexistent:/usr/sbin/nologin\n", i, 100000+2*i-1)
	}
	gr.WriteString("root:x:0:\nusers:x:100:\nnogroup:x:65534:\n")
	pol.WriteString("version: 1\noutbound: accept\nservices:\n  svc: {host: local, tcp: 5000}\nrules:\n")
	size := n / 10
	for k := 1; k <= 20; k++ {
		fmt.Fprintf(&gr, "bg%02d:x:%d:", k, 200000+k)
		if k > 10 {
			for i := (k-11)*size + 1; i <= (k-10)*size && i <= n; i++ {
				if i > (k-11)*size+1 {
					gr.WriteByte(',')
				}
				fmt.Fprintf(&gr, "bu%06d", i)
			}
		}
		gr.WriteByte('\n')
	}
	if perAccount {
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&pol, "  - {name: a%d, to: svc, who: [bu%06d], action: accept}\n", i, i)
		}
	} else {
		for k := 1; k <= 10; k++ {
			fmt.Fprintf(&pol, "  - {name: b%d, to: svc, who: [\"uid:%d-%d\"], action: accept}\n", k, 100000+2*(k-1)*size+1, 100000+2*k*size-1)
		}
		for k := 11; k <= 20; k++ {
			fmt.Fprintf(&pol, "  - {name: b%d, to: svc, who: [\"group:bg%02d\"], action: accept}\n", k, k)
		}
	}
	pol.WriteString("  - {name: everyone else, to: svc, action: reject}\n")
	return pw.String(), gr.String(), pol.String()
}

// listing answers getent with the world's text, in the 64 kB pieces a
// pipe delivers: every account is listed, so a lookup of one key finds
// nothing more.
func listing(passwd, group string) ident.Getent {
	texts := map[string][]byte{"passwd": []byte(passwd), "group": []byte(group)}
	return func(_ context.Context, w io.Writer, db string, keys ...string) error {
		if len(keys) > 0 {
			return ident.ErrNotFound
		}
		text := texts[db]
		for len(text) > 0 {
			n := min(len(text), 64<<10)
			if _, err := w.Write(text[:n]); err != nil {
				return err
			}
			text = text[n:]
		}
		return nil
	}
}

// BenchmarkCompile100k compiles with 100,000 accounts, from reading the
// accounts (a fresh NSS each time, as each command has) to the ruleset.
func BenchmarkCompile100k(b *testing.B) {
	for _, shape := range []struct {
		name       string
		perAccount bool
	}{{"groups", false}, {"users", true}} {
		b.Run(shape.name, func(b *testing.B) {
			passwd, group, src := benchWorld(100000, shape.perAccount)
			p, err := policy.Parse("bench.yaml", []byte(src))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				env := Env{Dir: ident.NewNSSWith(listing(passwd, group))}
				if _, err := Compile(context.Background(), p, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBenchWorld checks the bench compiles what it means to, at a size
// that runs with the tests.
func TestBenchWorld(t *testing.T) {
	passwd, group, src := benchWorld(1000, false)
	rs := compileOK(t, Env{Dir: ident.NewNSSWith(listing(passwd, group))}, src)
	if len(rs.Rules) != 21 || len(rs.Blocks) != 2 {
		t.Fatalf("%d rules, %d blocks", len(rs.Rules), len(rs.Blocks))
	}
	for k := 10; k < 20; k++ {
		if n := len(rs.Rules[k].Who[0].UIDs); n != 100 {
			t.Errorf("rule %d: %d uids, want 100", k+1, n)
		}
	}
	if why, ok := rs.Rules[10].Who[0].Via.Why(100001); !ok || why != "bu000001 is a supplementary member of bg11" {
		t.Errorf("why: %q %v", why, ok)
	}
}
