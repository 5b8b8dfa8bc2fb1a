# ownerwall: `sudo make demo` and `sudo make test` work on a fresh Debian/Ubuntu host.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# Kernel tests and the demo make network namespaces: they need root, and
# never touch this host's own ruleset.
TESTFLAGS ?= -count=1

.PHONY: deps build demo test unit fuzz clean

# What a fresh machine lacks: nft, iptables (both flavours), setpriv/unshare/nsenter, ip.
deps:
	@missing=""; \
	for c in nft iptables-restore xtables-legacy-multi setpriv unshare nsenter ip getent; do \
	  command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing what is missing:$$missing"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iptables iproute2 util-linux libc-bin >/dev/null; \
	  else echo "please install: nftables iptables iproute2 util-linux" >&2; exit 1; fi; \
	fi

build:
	$(GO) build -o bin/ownerwall ./cmd/ownerwall

demo: deps build
	./bin/ownerwall demo

test: deps
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=10s

# Fuzz the parser, the compiler+renderer and the importer for a fixed time
# each (CI: 10s each); a crash fails and leaves the input in testdata/fuzz.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/policy
	$(GO) test -run '^$$' -fuzz '^FuzzCompileRender$$' -fuzztime $(FUZZTIME) ./internal/backend/nft
	$(GO) test -run '^$$' -fuzz '^FuzzImport$$' -fuzztime $(FUZZTIME) ./internal/importer

unit:
	$(GO) test $(TESTFLAGS) -short ./...

clean:
	rm -rf bin
