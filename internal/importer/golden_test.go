package importer

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml, *.warnings and *.error from the importer")

// A golden case is testdata/NAME.save, with NAME.v6.save when the case has
// an IPv6 ruleset in a second file, and NAME.listening ("tcp 273" lines)
// when the case checks listeners. The importer's output is compared with
// NAME.yaml and NAME.warnings, or with NAME.error when the input is
// refused.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.save"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".v6.save") {
			names = append(names, strings.TrimSuffix(filepath.Base(f), ".save"))
		}
	}
	if len(names) < 9 {
		t.Fatalf("found %d golden cases, want at least 9", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join("testdata", name)
			inputs := []Input{readInputFile(t, base+".save")}
			if _, err := os.Stat(base + ".v6.save"); err == nil {
				inputs = append(inputs, readInputFile(t, base+".v6.save"))
			}
			opt := Options{File: "-"}
			if l, ok := readListening(t, base+".listening"); ok {
				opt.Listening = l
			}
			res, err := Import(inputs, opt)
			if err != nil {
				if res != nil {
					t.Errorf("Import returned a result along with an error")
				}
				checkErrors(t, err)
				golden(t, base+".error", err.Error()+"\n")
				for _, ext := range []string{".yaml", ".warnings"} {
					if _, err := os.Stat(base + ext); err == nil {
						t.Errorf("%s exists, but the input is refused", base+ext)
					}
				}
				return
			}
			if _, err := os.Stat(base + ".error"); err == nil {
				t.Errorf("%s exists, but the input was imported", base+".error")
			}
			p, perr := policy.Parse(name+".yaml", []byte(res.Policy))
			if perr != nil {
				t.Errorf("the imported policy does not parse:\n%v\n%s", perr, res.Policy)
			} else {
				checkPolicy(t, p)
			}
			golden(t, base+".yaml", res.Policy)
			var ws strings.Builder
			for _, w := range res.Warnings {
				ws.WriteString(w.String() + "\n")
			}
			golden(t, base+".warnings", ws.String())
		})
	}
}

func readInputFile(t *testing.T, path string) Input {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Name: filepath.Base(path), Data: data}
}

// readListening reads "PROTO PORT" lines: the ports something listens on.
func readListening(t *testing.T, path string) (func(string, uint16) bool, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 2 {
			t.Fatalf("%s: %q is not PROTO PORT", path, sc.Text())
		}
		if _, err := strconv.ParseUint(f[1], 10, 16); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		open[f[0]+" "+f[1]] = true
	}
	return func(proto string, port uint16) bool { return open[fmt.Sprintf("%s %d", proto, port)] }, true
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- want\n%s--- got\n%s", path, want, got)
	}
}
