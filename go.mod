module github.com/ownerwall/ownerwall

go 1.26.8

require (
	github.com/spf13/cobra v1.10.2
	golang.org/x/net v0.57.0
	golang.org/x/sys v0.47.0
	gopkg.in/yaml.v3 v3.0.1
	sigs.k8s.io/knftables v0.0.22
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/google/nftables v0.3.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mdlayher/netlink v1.11.2 // indirect
	github.com/mdlayher/socket v0.6.1 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/sync v0.22.0 // indirect
)
