package compile

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ownerwall/ownerwall/internal/backend/nft"
	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/lab"
	"github.com/ownerwall/ownerwall/internal/policy"
)

func TestZZScratch(t *testing.T) {
	src := lab.SeedPolicy
	if f := os.Getenv("POL"); f != "" {
		b, _ := os.ReadFile(f)
		src = string(b)
	}
	p, err := policy.Parse("seed.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := ident.NewStatic(lab.SeedPasswd, lab.SeedGroup)
	rs, err := Compile(context.Background(), p, Env{Dir: st, Hosts: st, Units: st})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%+v\n", rs.Profiles)
	fmt.Printf("%+v\n", rs.Dispatch)
	for _, r := range rs.Rules {
		fmt.Printf("%+v\n", r)
	}
	fmt.Println(nft.Script(rs))
}
