package importer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ownerwall/ownerwall/internal/policy"
)

// FuzzImport: Import never panics; it returns a result or Errors, never
// both; every policy it returns parses with policy.Parse; every warning and
// error names an input and a line.
//
// The fuzzer gives one or two inputs (the second when v6 is not empty), and
// mode picks the Listening function: none, nothing listens, or even ports.
func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.save"))
	for _, file := range files {
		if strings.HasSuffix(file, ".v6.save") {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		v6, _ := os.ReadFile(strings.TrimSuffix(file, ".save") + ".v6.save")
		f.Add(data, v6, byte(0))
		f.Add(data, []byte(nil), byte(1))
	}
	for _, s := range []string{
		head + "-A OUTPUT -d ::ffff:127.0.0.1 -j DROP\nCOMMIT\n",
		head + ":G - [0:0]\n-A OUTPUT -g G\n-A G -m owner ! --uid-owner 0 -j RETURN\n-A G -p tcp --sport 22 -j REJECT\nCOMMIT\n",
		head + "-A OUTPUT -m comment --comment \"\u2028\u0085\xff\" -p udp --dport :0 -j DROP\nCOMMIT\n",
		head + "-A OUTPUT -m owner --uid-owner 0-4294967295 -m addrtype --dst-type LOCAL -d 10.0.0.1,::1 -j LOG\n-A OUTPUT -j DROP\nCOMMIT\n",
		"*filter\n-A OUTPUT -p tcp -m tcp --dport 1:\nCOMMIT\n*filter\nCOMMIT\n*filter\nCOMMIT\n",
	} {
		f.Add([]byte(s), []byte(nil), byte(2))
	}
	f.Fuzz(func(t *testing.T, data, v6 []byte, mode byte) {
		inputs := []Input{{Name: "a.save", Data: data}}
		if len(v6) > 0 {
			inputs = append(inputs, Input{Name: "b.save", Data: v6})
		}
		var opt Options
		switch mode % 3 {
		case 1:
			opt.Listening = func(string, uint16) bool { return false }
		case 2:
			opt.Listening = func(_ string, port uint16) bool { return port%2 == 0 }
		}
		res, err := Import(inputs, opt)
		if err != nil {
			if res != nil {
				t.Fatal("a result along with an error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			checkErrors(t, err)
			return
		}
		if res == nil {
			t.Fatal("no result and no error")
		}
		checkWarnings(t, res.Warnings, "a.save", "b.save")
		p, err := policy.Parse("fuzz.yaml", []byte(res.Policy))
		if err != nil {
			t.Fatalf("the imported policy does not parse: %v\n%s", err, res.Policy)
		}
		checkPolicy(t, p)
	})
}
