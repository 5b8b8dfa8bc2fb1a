package e2e

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestSystemdUnit: the shipped unit passes systemd-analyze verify, runs
// `ownerwall restore`, and is ordered before network-pre.target. The
// binary is bound at /usr/local/sbin/ownerwall in a private mount
// namespace, so verify can check ExecStart without installing anything.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed here")
	}
	netnstest.RequireRoot(t)
	_, self, _, _ := runtime.Caller(0)
	unit := filepath.Join(filepath.Dir(self), "..", "..", "contrib", "ownerwall.service")
	bin := netnstest.Binary(t)
	script := `set -e
d=$(mktemp -d)
mount --bind "$d" /usr/local/sbin
cp "$0" /usr/local/sbin/ownerwall
systemd-analyze verify "$1"`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, bin, unit).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	text := readFile(t, unit)
	for _, want := range []string{"ExecStart=/usr/local/sbin/ownerwall restore", "Before=network-pre.target", "Wants=network-pre.target", "DefaultDependencies=no"} {
		if !strings.Contains(text, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
}
