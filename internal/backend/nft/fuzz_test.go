package nft

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/compile"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/policy"
)

// fuzzWorld is the identities every fuzzed policy resolves against.
func fuzzWorld(t testing.TB) compile.Env {
	dir, err := ident.NewStatic(
		"root:x:0:0::/:/bin/sh\nalice:x:1000:1000::/:/bin/sh\nbob:x:1001:10::/:/bin/sh\ncarol:x:1002:1002::/:/bin/sh\n",
		"root:x:0:\nwheel:x:10:alice\nalice:x:1000:\ncarol:x:1002:bob\n")
	if err != nil {
		t.Fatal(err)
	}
	dir.HostAddrs = map[string][]netip.Addr{
		"strudel":     {netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8:18::2")},
		"example.com": {netip.MustParseAddr("192.0.2.7")},
	}
	// No unit resolves: nft -c would look the cgroup up on this host.
	return compile.Env{Dir: dir, Units: dir, Hosts: dir}
}

var compileSeeds = []string{
	"version: 1\n",
	"version: 1\noutbound: reject\nrules:\n  - {to: {host: strudel, udp: [53, \"60-70\"]}, who: [alice], action: accept}\n",
	"version: 1\noutbound: drop\nrules:\n  - {serve: {tcp: any}, except: [root, \"group:wheel\"], action: reject}\n  - {to: {host: [local, \"::1\", 10.0.0.0/8]}, who: [\"uid:1000-1999\"], action: drop, log: true}\n",
	"version: 1\nservices:\n  t: {host: local, tcp: 992}\nrules:\n  - {to: t, except: [root], action: reject}\n  - {to: {tcp: [80, 443]}, except: [\"gid:10\"], action: drop}\n  - {serve: {udp: 5353}, who: [carol], action: drop}\n",
	"version: 1\nrules:\n  - {to: {host: example.com}, who: [everyone], except: [bob], action: reject}\n",
}

// FuzzCompileRender: whatever the input, parse, compile and render never
// panic; every error carries a position; every policy that parses and
// resolves compiles and renders a transaction for ownerwall's table only.
func FuzzCompileRender(f *testing.F) {
	for _, s := range compileSeeds {
		f.Add([]byte(s))
	}
	env := fuzzWorld(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		script, err := compileRender(env, data)
		if err != nil {
			var ps policy.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error without positions: %T %v", err, err)
			}
			for _, p := range ps {
				if p.Line < 1 || p.Col < 1 || p.Msg == "" {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
			if !strings.Contains(line, " inet ownerwall") {
				t.Fatalf("the script touches something other than ownerwall's table: %q", line)
			}
		}
	})
}

func compileRender(env compile.Env, data []byte) (string, error) {
	p, err := policy.Parse("fuzz.yaml", data)
	if err != nil {
		return "", err
	}
	rs, err := compile.Compile(context.Background(), p, env)
	if err != nil {
		return "", err
	}
	return Script(rs), nil
}

// TestFuzzCorpusAcceptedByNft: every seed and every committed corpus entry
// that compiles renders a script that nft itself accepts (nft -c, in a
// throwaway network namespace: nothing is loaded).
func TestFuzzCorpusAcceptedByNft(t *testing.T) {
	env := fuzzWorld(t)
	inputs := compileSeeds
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzCompileRender", "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := corpusValue(data); ok {
			inputs = append(inputs, v)
		}
	}
	checked := 0
	for i, in := range inputs {
		script, err := compileRender(env, []byte(in))
		if err != nil {
			continue
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { nftCheckScript(t, script) })
		checked++
	}
	if checked < len(compileSeeds) {
		t.Errorf("only %d inputs compiled; the seeds alone should", checked)
	}
}

// corpusValue reads a `go test fuzz v1` file holding one []byte.
func corpusValue(data []byte) (string, bool) {
	lines := strings.SplitN(string(data), "\n", 2)
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "go test fuzz v1") {
		return "", false
	}
	body := strings.TrimSpace(lines[1])
	if !strings.HasPrefix(body, "[]byte(") || !strings.HasSuffix(body, ")") {
		return "", false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(body, "[]byte("), ")"))
	return s, err == nil
}

// TestRandomPoliciesAcceptedByNft: seeded random policies built from every
// kind of principal, host, port form, action and outbound default compile,
// and nft accepts each rendered transaction (nft -c in a throwaway network
// namespace).
func TestRandomPoliciesAcceptedByNft(t *testing.T) {
	env := fuzzWorld(t)
	rng := rand.New(rand.NewPCG(42, 7))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	for i := 0; i < 60; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "version: 1\noutbound: %s\nrules:\n", pick("accept", "drop", "reject"))
		for r := 0; r < 1+rng.IntN(8); r++ {
			ports := pick("80", "[80, 443]", `"6000-6010"`, "any", `[53, "100-200", 8080]`)
			if rng.IntN(4) == 0 {
				fmt.Fprintf(&b, "  - serve: {%s: %s}\n", pick("tcp", "udp"), ports)
			} else {
				dest := pick("", "tcp: "+ports, "udp: "+ports, "tcp: "+ports+", udp: 53")
				host := pick("", "host: local", "host: strudel", `host: "10.0.0.0/8"`, `host: [local, "::1", 198.18.0.0/15]`, `host: "2001:db8::/32"`, "host: example.com")
				fmt.Fprintf(&b, "  - to: {%s}\n", strings.Trim(host+", "+dest, ", "))
			}
			fmt.Fprintf(&b, "    who: [%s]\n", pick("everyone", "alice", `"group:wheel"`, `"uid:1000-1999"`, `"gid:1002"`, `alice, bob`))
			if rng.IntN(2) == 0 {
				fmt.Fprintf(&b, "    except: [%s]\n", pick("root", "bob", `"group:carol"`, `"uid:1001"`))
			}
			fmt.Fprintf(&b, "    action: %s\n", pick("accept", "drop", "reject"))
			if rng.IntN(5) == 0 {
				b.WriteString("    log: true\n")
			}
		}
		script, err := compileRender(env, []byte(b.String()))
		if err != nil {
			t.Fatalf("policy %d does not compile: %v\n%s", i, err, b.String())
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { nftCheckScript(t, script) })
	}
}
