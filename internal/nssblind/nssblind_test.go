package nssblind

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCommandHidesAccounts: inside, no account resolves (not even root),
// nsswitch.conf names no source that exists; outside, nothing changed; cleanup removes the
// temporary file.
func TestCommandHidesAccounts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (CI=true: a skip is a failure)")
		}
		t.Skip("needs root (mount namespaces)")
	}
	argv, cleanup, err := Command(nil, `getent passwd root; echo "exit $?"; cat /etc/nsswitch.conf; exec "$@"`, "echo", "last")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := string(out)
	for _, want := range []string{"exit 2\n", "passwd: ownerwallnone\n", "last\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("inside: want %q in %q", want, got)
		}
	}
	if strings.Contains(got, "root:x:0") {
		t.Errorf("root resolved inside: %q", got)
	}
	if out, err := exec.Command("getent", "passwd", "root").Output(); err != nil || !strings.HasPrefix(string(out), "root:") {
		t.Errorf("outside, root no longer resolves: %q %v", out, err)
	}
	nss := argv[len(argv)-3]
	if _, err := os.Stat(nss); err != nil {
		t.Fatalf("the nsswitch file %s: %v", nss, err)
	}
	cleanup()
	if _, err := os.Stat(nss); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s", nss)
	}
}
