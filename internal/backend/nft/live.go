package nft

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Counter is one rule's named counter.
type Counter struct {
	Rule    int    `json:"rule"`
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Counters reads the per-rule named counters of the live table.
func Counters(ctx context.Context) ([]Counter, error) {
	cmd := exec.CommandContext(ctx, "nft", "-j", "list", "counters", "table", "inet", Table)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "No such file or directory") {
			return nil, nil
		}
		return nil, fmt.Errorf("nft list counters: %s", firstLines(strings.TrimSpace(stderr.String()), 3))
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Comment string `json:"comment"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("nft list counters: %w", err)
	}
	var cs []Counter
	for _, o := range doc.Nftables {
		if o.Counter == nil {
			continue
		}
		// rule_N, or rules_N_M for a block of rules N to M (counted
		// under N).
		num, ok := strings.CutPrefix(o.Counter.Name, "rule_")
		if !ok {
			rest, isBlock := strings.CutPrefix(o.Counter.Name, "rules_")
			if num, _, ok = strings.Cut(rest, "_"); !isBlock || !ok {
				continue
			}
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		cs = append(cs, Counter{Rule: n, Name: o.Counter.Comment, Packets: o.Counter.Packets, Bytes: o.Counter.Bytes})
	}
	return cs, nil
}

// Snapshot returns a script that puts ownerwall's table back as it is now
// (or removes it, if there is none): what a rollback loads.
func Snapshot(ctx context.Context) (string, error) {
	live, err := List(ctx)
	if err != nil {
		return "", err
	}
	if live == "" {
		return FlushScript(), nil
	}
	return FlushScript() + live, nil
}

var countersRE = regexp.MustCompile(`packets \d+ bytes \d+`)

// Normalize zeroes counter values and puts every map element on its own
// line, sorted, so that listings compare by content: the kernel dumps a
// hash map's elements in an order of its own.
func Normalize(listing string) string {
	listing = countersRE.ReplaceAllString(listing, "packets 0 bytes 0")
	lines := strings.Split(listing, "\n")
	out := make([]string, 0, len(lines))
	for i := 0; i < len(lines); i++ {
		indent, body, ok := strings.Cut(lines[i], "elements = {")
		if !ok {
			out = append(out, lines[i])
			continue
		}
		for !strings.HasSuffix(strings.TrimSpace(body), "}") && i+1 < len(lines) {
			i++
			body += " " + lines[i]
		}
		body = strings.TrimSuffix(strings.TrimSpace(body), "}")
		var elems []string
		for _, e := range strings.Split(body, ",") {
			if e = strings.Join(strings.Fields(e), " "); e != "" {
				elems = append(elems, indent+"element "+e)
			}
		}
		sort.Strings(elems)
		out = append(out, elems...)
	}
	return strings.Join(out, "\n")
}
