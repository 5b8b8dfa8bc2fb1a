package state

import (
	"fmt"
	"os"
	"strings"
)

// Mark identifies one state of the kernel's nf_tables ruleset: the
// generation, which every committed change moves, in this boot and this
// network namespace. The generation alone is not enough: the counter
// starts again at every boot (and in every namespace), so a record from
// the last boot could match a kernel that has never seen ownerwall's
// table.
type Mark struct {
	Generation uint32 `json:"generation"`
	Boot       string `json:"boot_id"`
	Netns      string `json:"netns"`
}

// MarkOf is the mark of generation gen here and now: this boot, the
// calling thread's network namespace.
func MarkOf(gen uint32) (Mark, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return Mark{}, fmt.Errorf("kernel mark: %w", err)
	}
	netns, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		return Mark{}, fmt.Errorf("kernel mark: %w", err)
	}
	return Mark{Generation: gen, Boot: strings.TrimSpace(string(boot)), Netns: netns}, nil
}

// Follows reports whether m is what one transaction (commits 1) or none
// (commits 0) after before gives: the same boot and namespace, the
// generation moved by exactly that much. Anything else means someone else
// committed in between.
func (m Mark) Follows(before Mark, commits uint32) bool {
	return m.Boot == before.Boot && m.Netns == before.Netns && m.Generation == before.Generation+commits
}
