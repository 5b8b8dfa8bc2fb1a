package e2e

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/netnstest"
)

// TestSystemdUnit: the shipped units pass systemd-analyze verify;
// ownerwall.service runs `ownerwall restore` ordered before
// network-pre.target, ownerwall-watch.service runs `ownerwall watch` after
// it and reloads with SIGHUP. The binary is bound at
// /usr/local/sbin/ownerwall in a private mount namespace, so verify can
// check ExecStart without installing anything.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed here")
	}
	netnstest.RequireRoot(t)
	_, self, _, _ := runtime.Caller(0)
	bin := netnstest.Binary(t)
	for name, wants := range map[string][]string{
		"ownerwall.service": {"ExecStart=/usr/local/sbin/ownerwall restore", "Before=network-pre.target", "Wants=network-pre.target", "DefaultDependencies=no"},
		"ownerwall-watch.service": {"ExecStart=/usr/local/sbin/ownerwall watch -f /etc/ownerwall/policy.yaml", "After=ownerwall.service",
			"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "KillMode=mixed"},
	} {
		unit := filepath.Join(filepath.Dir(self), "..", "..", "contrib", name)
		script := `set -e
d=$(mktemp -d)
mount --bind "$d" /usr/local/sbin
cp "$0" /usr/local/sbin/ownerwall
systemd-analyze verify "$1"`
		out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, bin, unit).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
		text := readFile(t, unit)
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
	}
}
