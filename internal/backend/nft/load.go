package nft

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ownerwall/ownerwall/internal/nssblind"
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

// Load runs script with one `nft -f`: the kernel applies all of it or
// none of it. unitCgroups says the script matches cgroup v2 paths, which
// nft resolves below /sys/fs/cgroup; on a hybrid host (cgroup2 at
// /sys/fs/cgroup/unified) the unified hierarchy is bound there.
//
// nft runs in a private mount namespace that hides the account database:
// nft parses every uid map key with getpwnam() before it tries the key as
// a number, and glibc answers each call by reading /etc/passwd (and the
// other NSS sources) from the top. With 10,000 accounts that made loading
// 10,000 uid elements take 7.4 s instead of 0.15 s (measured); with
// 100,000, minutes. ownerwall writes uids as numbers only, so nft loses
// nothing by not seeing the names.
func Load(ctx context.Context, script string, unitCgroups bool) error {
	// OWNERWALL_TEST_APPEND is a test hook: commands appended to the
	// transaction, to prove that a kernel refusal midway changes nothing.
	if extra := os.Getenv("OWNERWALL_TEST_APPEND"); extra != "" {
		script += extra + "\n"
	}
	_, err := runNft(ctx, script, nftRun{unitCgroups: unitCgroups})
	return err
}

// Reference loads script in a scratch network namespace and returns the
// listing nft gives of it there, counters zeroed and elements sorted: what
// the live table should list, to compare it with.
func Reference(ctx context.Context, script string) (string, error) {
	out, err := runNft(ctx, script, nftRun{unitCgroups: strings.Contains(script, "socket cgroupv2"), scratch: true})
	if err != nil {
		return "", fmt.Errorf("reference listing: %w", err)
	}
	return Normalize(out), nil
}

// nftRun says how runNft runs nft.
type nftRun struct {
	unitCgroups bool // the script matches cgroup v2 paths
	scratch     bool // in a new network namespace, and list the table after
}

// runNft runs `nft -f` on script, blind to the account database.
func runNft(ctx context.Context, script string, how nftRun) (string, error) {
	// nft reads the whole script from a sealed in-memory file, never from
	// a pipe: if ownerwall is killed while writing a pipe, nft would read a
	// truncated script and load it, a partial ruleset.
	f, err := sealed.File("ownerwall-nft-script", []byte(script))
	if err != nil {
		return "", fmt.Errorf("nft: %w", err)
	}
	defer f.Close()
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "nft", args...)
		cmd.ExtraFiles = []*os.File{f}
		// A process group of its own: a Ctrl-C meant for ownerwall (watch)
		// must not kill nft halfway; ownerwall finishes the load, then stops.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return "", fmt.Errorf("nft refused the ruleset, nothing changed: %s", firstLines(msg, 6))
		}
		return stdout.String(), nil
	}
	o, err := blindOptions(how)
	if err != nil {
		return "", err
	}
	var out string
	err = nssblind.Do(o, func() error {
		var err error
		if out, err = run("-f", "/dev/fd/3"); err == nil && how.scratch {
			out, err = run("list", "table", "inet", Table)
		}
		return err
	})
	return out, err
}

// blindOptions is how nft runs blind to the account database (see Load):
// in a scratch network namespace when asked, and with a hybrid host's
// cgroup2 where nft looks for unit paths.
func blindOptions(how nftRun) (nssblind.Options, error) {
	o := nssblind.Options{NewNet: how.scratch}
	if how.unitCgroups && !isCgroup2("/sys/fs/cgroup") {
		if !isCgroup2("/sys/fs/cgroup/unified") {
			return o, fmt.Errorf("nft: unit principals need cgroup v2, mounted at neither /sys/fs/cgroup nor /sys/fs/cgroup/unified")
		}
		o.Binds = map[string]string{"/sys/fs/cgroup/unified": "/sys/fs/cgroup"}
	}
	return o, nil
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
