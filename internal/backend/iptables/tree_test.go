package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// scattered is a policy over n accounts with every other uid, all in
// group users: 2n uid ranges, none of which can merge with its neighbour.
func scattered(n int) goldenCase {
	var pw strings.Builder
	pw.WriteString("root:x:0:0:root:/root:/bin/sh\n")
	for i := range n {
		fmt.Fprintf(&pw, "s%06d:x:%d:100::/home/s%06d:/bin/sh\n", i, 10000+2*i, i)
	}
	return goldenCase{
		name:   fmt.Sprintf("scattered%d", n),
		policy: "version: 1\nrules:\n  - {name: users keep off, to: {tcp: 5000}, who: [\"group:users\"], action: drop}\n",
		passwd: pw.String(), group: "users:x:100:\n",
	}
}

// TestFanOut: up to 2^maxTreeDepth ranges the tree stays binary; beyond,
// it widens just enough to stay within maxTreeDepth.
func TestFanOut(t *testing.T) {
	for _, n := range []int{1, 2, 3, 100, 1000, 2047, 2048, 4096, 40000, 200000, 1 << 20, 1 << 24} {
		k := fanOut(n)
		if treeDepth(n, k) > maxTreeDepth || k > 2 && treeDepth(n, k-1) <= maxTreeDepth {
			t.Errorf("n=%d: k=%d (depth %d), not the smallest k within %d", n, k, treeDepth(n, k), maxTreeDepth)
		}
		if n <= 1<<maxTreeDepth && k != 2 {
			t.Errorf("n=%d: k=%d, want a binary tree", n, k)
		}
	}
}

// TestWideTree: 40,000 accounts spread over the uid space (80,000 ranges)
// render as a tree whose chains nest less than nf_tables' 16 levels, and
// every sampled uid reaches its profile.
func TestWideTree(t *testing.T) {
	rs := compileCase(t, scattered(40000))
	v4, _ := Render(rs)
	sim := parseRendered(t, v4, "v4")
	// nf_tables refuses 16 levels from OUTPUT (NFT_JUMP_STACK_SIZE);
	// OUTPUT -> OWNERWALL is the first.
	if depth := 1 + nesting(v4, MainChain); depth >= 16 {
		t.Errorf("chains nest %d deep from OUTPUT: nf_tables refuses 16", depth)
	}
	d := rs.Dispatch[len(rs.Dispatch)-1]
	worst := 0
	for uid := uint32(9990); uid < 10000+80000+10; uid += 37 {
		pk := packet{uid: uid, socket: true, proto: "tcp", syn: true, ct: "NEW", dst: netip.MustParseAddr("203.0.113.9"), dport: 5000}
		res := sim.run(t, pk)
		if res.profile != d.ProfileOf(uid) {
			t.Fatalf("uid %d reached profile %d, want %d", uid, res.profile, d.ProfileOf(uid))
		}
		worst = max(worst, res.toProfile)
	}
	t.Logf("%d ranges, fan-out %d: at most %d rules to a profile", len(cover(d.UIDs)), fanOut(len(cover(d.UIDs))), worst)
}

// nesting is how deep chains nest below chain in a rendered family: the
// longest chain of -g/-j targets.
func nesting(rendered, chain string) int {
	targets := map[string][]string{}
	for _, line := range strings.Split(rendered, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if (f[i] == "-g" || f[i] == "-j") && strings.HasPrefix(f[i+1], "OWNERWALL") {
				targets[f[1]] = append(targets[f[1]], f[i+1])
			}
		}
	}
	memo := map[string]int{}
	var depth func(string) int
	depth = func(c string) int {
		if d, ok := memo[c]; ok {
			return d
		}
		d := 0
		for _, next := range targets[c] {
			d = max(d, 1+depth(next))
		}
		memo[c] = d
		return d
	}
	return depth(chain)
}

// TestKernelWideTree: iptables-nft refuses chains nested 16 deep ("Too
// many links"); a binary tree reached that at about 32,000 uid ranges. The
// tree of 20,000 scattered accounts (40,000 ranges) loads, in both
// flavours.
func TestKernelWideTree(t *testing.T) {
	inNamespaces(t, func(t *testing.T, flavour string) {
		if testing.Short() {
			t.Skip("large: not in -short")
		}
		rs := compileCase(t, scattered(20000))
		if err := Load(context.Background(), rs); err != nil {
			t.Fatalf("%s: %v", flavour, err)
		}
		if err := Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
