package nft

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ownerwall/ownerwall/internal/sealed"

	"github.com/ownerwall/ownerwall/internal/ir"
)

// Script renders the whole transaction that Apply loads: the table, then
// the uid map elements in a few long commands.
func Script(rs *ir.Ruleset) string {
	var b strings.Builder
	b.WriteString(skeleton(rs))
	writeAllElements(&b, rs)
	return b.String()
}

// FlushScript is the transaction that removes ownerwall's table.
func FlushScript() string {
	tx := NewTransaction()
	Flush(tx)
	return tx.String()
}

// Load runs script with one `nft -f -`: the kernel applies all of it or
// none of it. unitCgroups says the script matches cgroup v2 paths, which
// nft resolves below /sys/fs/cgroup; on a hybrid host (cgroup2 at
// /sys/fs/cgroup/unified) nft runs in a private mount namespace with the
// unified hierarchy bound there.
func Load(ctx context.Context, script string, unitCgroups bool) error {
	// OWNERWALL_TEST_APPEND is a test hook: commands appended to the
	// transaction, to prove that a kernel refusal midway changes nothing.
	if extra := os.Getenv("OWNERWALL_TEST_APPEND"); extra != "" {
		script += extra + "\n"
	}
	// nft reads the whole script from a sealed in-memory file, never from
	// a pipe: if ownerwall is killed while writing a pipe, nft would read a
	// truncated script and load it, a partial ruleset.
	f, err := sealed.File("ownerwall-nft-script", []byte(script))
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	defer f.Close()
	args := []string{"nft", "-f", "/dev/fd/3"}
	if unitCgroups && !isCgroup2("/sys/fs/cgroup") {
		if !isCgroup2("/sys/fs/cgroup/unified") {
			return fmt.Errorf("nft: unit principals need cgroup v2, mounted at neither /sys/fs/cgroup nor /sys/fs/cgroup/unified")
		}
		args = []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
			"mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec nft -f /dev/fd/3"}
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("nft refused the ruleset, nothing changed: %s", firstLines(msg, 6))
	}
	return nil
}

// HasUnits reports whether rs matches on cgroups.
func HasUnits(rs *ir.Ruleset) bool {
	for _, d := range rs.Dispatch {
		if d.Unit != "" {
			return true
		}
	}
	return false
}

// List prints ownerwall's live table, or "" when there is none.
func List(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "nft", "list", "table", "inet", Table)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "No such file or directory") {
			return "", nil
		}
		return "", fmt.Errorf("nft list: %s", firstLines(strings.TrimSpace(stderr.String()), 3))
	}
	return out.String(), nil
}

func isCgroup2(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, " | ")
}
