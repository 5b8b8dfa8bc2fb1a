package explain

import (
	"net"
	"net/netip"
)

// HostAddrs reports whether an address belongs to this host, as the kernel's
// local routing table does: 127.0.0.0/8, ::1, and every interface address.
func HostAddrs() (LocalFunc, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	own := map[netip.Addr]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				own[ip.Unmap()] = true
			}
		}
	}
	loop4 := netip.MustParsePrefix("127.0.0.0/8")
	return func(a netip.Addr) bool {
		a = a.Unmap()
		return loop4.Contains(a) || a == netip.IPv6Loopback() || own[a]
	}, nil
}
