package nssblind

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDoHidesAccounts: commands started inside Do see no account and
// nsswitch.conf names no source that exists; the rest of the process, and
// commands started after, see everything as before.
func TestDoHidesAccounts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (CI=true: a skip is a failure)")
		}
		t.Skip("needs root (mount namespaces)")
	}
	before, _ := os.Readlink("/proc/self/ns/net")
	var inside []byte
	err := Do(Options{NewNet: true}, func() error {
		var err error
		inside, err = exec.Command("sh", "-c", `getent passwd root; echo "exit $?"; cat /etc/nsswitch.conf; readlink /proc/self/ns/net`).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%v: %s", err, inside)
	}
	got := string(inside)
	for _, want := range []string{"exit 2\n", "passwd: ownerwallnone\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("inside: want %q in %q", want, got)
		}
	}
	if strings.Contains(got, "root:x:0") || strings.Contains(got, before) {
		t.Errorf("inside, root resolved or the network namespace is the process's: %q (process: %s)", got, before)
	}
	if out, err := exec.Command("getent", "passwd", "root").Output(); err != nil || !strings.HasPrefix(string(out), "root:") {
		t.Errorf("after, root no longer resolves: %q %v", out, err)
	}
	if data, err := os.ReadFile("/etc/nsswitch.conf"); err != nil || strings.Contains(string(data), "ownerwallnone") {
		t.Errorf("after, this process sees the blind nsswitch.conf: %v", err)
	}
	if after, _ := os.Readlink("/proc/self/ns/net"); after != before {
		t.Errorf("the process changed network namespace: %s -> %s", before, after)
	}
}
