package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Probe makes one connection attempt and names the outcome: accept,
// reject, drop, or "error: ...".
func Probe(ctx context.Context, proto, addr string, srcPort int, timeout time.Duration) (string, string) {
	d := net.Dialer{Timeout: timeout}
	if srcPort != 0 {
		if proto == "udp" {
			d.LocalAddr = &net.UDPAddr{Port: srcPort}
		} else {
			d.LocalAddr = &net.TCPAddr{Port: srcPort}
		}
	}
	switch proto {
	case "tcp":
		return probeTCP(ctx, d, addr, timeout)
	case "udp":
		return probeUDP(ctx, d, addr, timeout)
	}
	return "error", "unknown protocol " + proto
}

func classify(err error) (string, string) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return "reject", err.Error()
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		// netfilter dropped or rejected a packet this socket sent
		return "drop", err.Error()
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "reject", err.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "drop", "timeout"
	}
	return "error", err.Error()
}

func probeTCP(ctx context.Context, d net.Dialer, addr string, timeout time.Duration) (string, string) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "accept", "connected, no greeting: " + err.Error()
	}
	return "accept", strings.TrimSpace(line)
}

func probeUDP(ctx context.Context, d net.Dialer, addr string, timeout time.Duration) (string, string) {
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 512)
	if _, werr := c.Write([]byte("ownerwall-probe\n")); werr != nil {
		// Both drop and reject make a local send fail with EPERM; a reject
		// also sends an ICMP port unreachable, which the socket reports next.
		if _, rerr := c.Read(buf); rerr != nil && errors.Is(rerr, syscall.ECONNREFUSED) {
			return "reject", "send: " + werr.Error() + "; then: " + rerr.Error()
		}
		return classify(werr)
	}
	n, err := c.Read(buf)
	if err != nil {
		return classify(err)
	}
	return "accept", strings.TrimSpace(string(buf[:n]))
}

// Listen serves until ctx ends: TCP writes a greeting to each connection,
// UDP echoes each datagram. ready is called once the socket listens.
func Listen(ctx context.Context, proto string, port int, ready func()) error {
	addr := fmt.Sprintf(":%d", port)
	switch proto {
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer l.Close()
		go func() { <-ctx.Done(); l.Close() }()
		ready()
		for {
			c, err := l.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				continue
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "hello from tcp port %d\n", port)
			}()
		}
	case "udp":
		// One socket per family, each answering from the address the
		// datagram was sent to: a client that sent to 127.0.0.2 ignores a
		// reply from 127.0.0.1.
		c4, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer c4.Close()
		c6, err := net.ListenPacket("udp6", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer c6.Close()
		p4, p6 := ipv4.NewPacketConn(c4), ipv6.NewPacketConn(c6)
		if err := p4.SetControlMessage(ipv4.FlagDst, true); err != nil {
			return fmt.Errorf("listen: pktinfo: %w", err)
		}
		if err := p6.SetControlMessage(ipv6.FlagDst, true); err != nil {
			return fmt.Errorf("listen: pktinfo: %w", err)
		}
		go func() { <-ctx.Done(); c4.Close(); c6.Close() }()
		ready()
		greet := func(b []byte) []byte { return []byte(fmt.Sprintf("echo from udp port %d: %s", port, b)) }
		go func() {
			buf := make([]byte, 2048)
			for ctx.Err() == nil {
				n, cm, from, err := p4.ReadFrom(buf)
				if err == nil && cm != nil {
					_, _ = p4.WriteTo(greet(buf[:n]), &ipv4.ControlMessage{Src: cm.Dst}, from)
				}
			}
		}()
		buf := make([]byte, 2048)
		for ctx.Err() == nil {
			n, cm, from, err := p6.ReadFrom(buf)
			if err == nil && cm != nil {
				_, _ = p6.WriteTo(greet(buf[:n]), &ipv6.ControlMessage{Src: cm.Dst}, from)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown protocol %q", proto)
}
