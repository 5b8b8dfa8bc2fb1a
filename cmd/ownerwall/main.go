// Command ownerwall decides which local users may connect where, compiles
// that into one atomic nftables ruleset, and explains and proves it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ownerwall/ownerwall/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
