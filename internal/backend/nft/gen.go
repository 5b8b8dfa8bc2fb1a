package nft

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Netlink constants of nf_tables' generation query (linux/netfilter/
// nfnetlink.h, nf_tables.h).
const (
	nfnlSubsysNftables = 10
	nftMsgGetGen       = 16
	nftMsgNewGen       = 15
	nftaGenID          = 1
)

// Generation returns the network namespace's nf_tables generation: a
// counter the kernel bumps on every committed ruleset change, by any tool,
// in any table. If it has not moved since ownerwall's own load, the table
// is exactly as loaded, and ownerwall need not list (at 100,000 uid
// elements, a second of nft's time) to know that.
func Generation() (uint32, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	req := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], nfnlSubsysNftables<<8|nftMsgGetGen)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence
	req[16] = unix.AF_UNSPEC                  // nfgenmsg: family, version 0, res_id 0
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	for _, m := range msgs {
		switch {
		case m.Header.Type == unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
					return 0, fmt.Errorf("nf_tables generation: %w", unix.Errno(-code))
				}
			}
		case m.Header.Type == nfnlSubsysNftables<<8|nftMsgNewGen && len(m.Data) >= 4:
			attrs := m.Data[4:]
			for len(attrs) >= 4 {
				l := int(binary.NativeEndian.Uint16(attrs[0:]))
				typ := binary.NativeEndian.Uint16(attrs[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
				if l < 4 || l > len(attrs) {
					break
				}
				if typ == nftaGenID && l >= 8 {
					return binary.BigEndian.Uint32(attrs[4:]), nil
				}
				attrs = attrs[min(len(attrs), (l+3)&^3):]
			}
		}
	}
	return 0, fmt.Errorf("nf_tables generation: no answer")
}
