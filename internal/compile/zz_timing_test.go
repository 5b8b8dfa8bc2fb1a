package compile

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/policy"
	"github.com/ownerwall/ownerwall/internal/backend/nft"
)

func TestZZTiming(t *testing.T) {
	w := os.Getenv("WORLD")
	if w == "" {
		t.Skip()
	}
	src, _ := os.ReadFile(w + "/policy.yaml")
	pw, _ := os.ReadFile(w + "/passwd")
	gr, _ := os.ReadFile(w + "/group")
	t0 := time.Now()
	p, err := policy.Parse("p.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	st, _ := ident.NewStatic(string(pw), string(gr))
	t2 := time.Now()
	rs, err := Compile(context.Background(), p, Env{Dir: st, Hosts: st})
	if err != nil {
		t.Fatal(err)
	}
	t3 := time.Now()
	s := nft.Script(rs)
	t4 := time.Now()
	t.Logf("parse %v static %v compile %v script %v (%d bytes)", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), len(s))
}
