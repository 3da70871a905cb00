package sandbox

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// specialPurpose is every entry of the IANA IPv4 and IPv6 Special-Purpose
// Address Registries (iana-ipv4-special-registry,
// iana-ipv6-special-registry), plus the multicast blocks (IPv4 224.0.0.0/4,
// IPv6 ff00::/8) and the IPv6 space outside 2000::/3 (global unicast),
// written out here from the registries, independently of the library the
// guard uses, so that a range the library drops is caught.
var specialPurpose = []struct {
	name   string
	prefix string
}{
	// IPv4 Special-Purpose Address Registry.
	{"this host on this network", "0.0.0.0/32"},
	{"this network", "0.0.0.0/8"},
	{"private-use 10", "10.0.0.0/8"},
	{"shared address space (CGNAT)", "100.64.0.0/10"},
	{"loopback", "127.0.0.0/8"},
	{"link local (incl. IMDS)", "169.254.0.0/16"},
	{"private-use 172.16", "172.16.0.0/12"},
	{"IETF protocol assignments", "192.0.0.0/24"},
	{"IPv4 service continuity prefix", "192.0.0.0/29"},
	{"IPv4 dummy address", "192.0.0.8/32"},
	{"port control protocol anycast", "192.0.0.9/32"},
	{"TURN anycast", "192.0.0.10/32"},
	{"NAT64/DNS64 discovery 170", "192.0.0.170/32"},
	{"NAT64/DNS64 discovery 171", "192.0.0.171/32"},
	{"documentation TEST-NET-1", "192.0.2.0/24"},
	{"AS112-v4", "192.31.196.0/24"},
	{"AMT", "192.52.193.0/24"},
	{"6to4 relay anycast (deprecated)", "192.88.99.0/24"},
	{"private-use 192.168", "192.168.0.0/16"},
	{"direct delegation AS112", "192.175.48.0/24"},
	{"benchmarking", "198.18.0.0/15"},
	{"documentation TEST-NET-2", "198.51.100.0/24"},
	{"documentation TEST-NET-3", "203.0.113.0/24"},
	{"reserved", "240.0.0.0/4"},
	{"limited broadcast", "255.255.255.255/32"},
	{"multicast v4", "224.0.0.0/4"},

	// IPv6 Special-Purpose Address Registry.
	{"loopback v6", "::1/128"},
	{"unspecified v6", "::/128"},
	{"IPv4-mapped", "::ffff:0:0/96"},
	{"IPv4-compatible (deprecated)", "::/96"},
	{"IPv4-IPv6 translation (NAT64)", "64:ff9b::/96"},
	{"IPv4-IPv6 translation (local-use NAT64)", "64:ff9b:1::/48"},
	{"discard-only", "100::/64"},
	{"dummy IPv6 prefix", "100:0:0:1::/64"},
	{"IETF protocol assignments v6", "2001::/23"},
	{"TEREDO", "2001::/32"},
	{"port control protocol anycast v6", "2001:1::1/128"},
	{"TURN anycast v6", "2001:1::2/128"},
	{"DNS-SD SRP anycast", "2001:1::3/128"},
	{"benchmarking v6", "2001:2::/48"},
	{"AMT v6", "2001:3::/32"},
	{"AS112-v6", "2001:4:112::/48"},
	{"ORCHIDv2", "2001:20::/28"},
	{"drone remote ID", "2001:30::/28"},
	{"documentation v6", "2001:db8::/32"},
	{"6to4", "2002::/16"},
	{"direct delegation AS112 v6", "2620:4f:8000::/48"},
	{"documentation v6 3fff", "3fff::/20"},
	{"segment routing SIDs", "5f00::/16"},
	{"unique-local", "fc00::/7"},
	{"link-local v6", "fe80::/10"},
	{"multicast v6", "ff00::/8"},
	// Outside 2000::/3, global unicast: nothing there is the internet.
	{"below global unicast", "::/3"},
	{"above global unicast", "4000::/2"},
	{"upper half", "8000::/1"},
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func inSpecial(a netip.Addr) bool {
	for _, sp := range specialPurpose {
		if netip.MustParsePrefix(sp.prefix).Contains(a) {
			return true
		}
	}
	return false
}

// TestEgressSpecialPurposeRanges checks, range by range, that the first
// and last address of every special-purpose range is refused, in plain form
// and (for IPv4) in every IPv6 form that reaches it (IPv4-mapped,
// IPv4-compatible, NAT64, local-use NAT64, 6to4), and that the addresses
// just outside each range are refused exactly when another range holds
// them.
func TestEgressSpecialPurposeRanges(t *testing.T) {
	for _, sp := range specialPurpose {
		t.Run(sp.name, func(t *testing.T) {
			p := netip.MustParsePrefix(sp.prefix)
			first, last := p.Masked().Addr(), lastAddr(p)
			for _, a := range []netip.Addr{first, last} {
				if !blocked(a) {
					t.Errorf("%s (%s) is not refused", a, sp.prefix)
				}
				if a.Is4() {
					for _, form := range v6Forms(a) {
						if !blocked(form) {
							t.Errorf("%s (%s as %s) is not refused", form, sp.prefix, a)
						}
					}
				}
			}
			for _, a := range []netip.Addr{first.Prev(), last.Next()} {
				if !a.IsValid() {
					continue
				}
				if want := inSpecial(a); blocked(a) != want {
					t.Errorf("%s, just outside %s: refused=%v, want %v", a, sp.prefix, blocked(a), want)
				}
			}
		})
	}
	// Public addresses stay reachable.
	for _, s := range []string{"93.184.216.34", "8.8.8.8", "1.1.1.1", "100.128.0.1", "172.32.0.1", "198.20.0.1", "223.255.255.255",
		"2606:4700::1", "2a00:1450::1", "2001:4860:4860::8888", "2000::1"} {
		if blocked(netip.MustParseAddr(s)) {
			t.Errorf("public %s is refused", s)
		}
	}
}

// v6Forms are the IPv6 spellings of an IPv4 address that a resolver can
// hand back and that a network may translate to it.
func v6Forms(a netip.Addr) []netip.Addr {
	b := a.As4()
	mk := func(prefix []byte, at int) netip.Addr {
		var x [16]byte
		copy(x[:], prefix)
		copy(x[at:], b[:])
		return netip.AddrFrom16(x)
	}
	return []netip.Addr{
		mk(nil, 12), // ::a.b.c.d (IPv4-compatible)
		mk([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 12), // ::ffff:a.b.c.d
		mk([]byte{0, 0x64, 0xff, 0x9b}, 12),                      // 64:ff9b::a.b.c.d
		mk([]byte{0, 0x64, 0xff, 0x9b, 0, 1}, 12),                // 64:ff9b:1::a.b.c.d
		mk([]byte{0x20, 0x02}, 2),                                // 2002:a.b.c.d::
	}
}

// TestEgressDialRefusesTranslatedLoopback: a literal IPv6 address that
// translates to loopback is refused before any connection is attempted
// (the dialer below fails the test if it is called).
func TestEgressDialRefusesTranslatedLoopback(t *testing.T) {
	e := newEgress([]string{"api.example.com"}, nil)
	var dialed []string
	dial := e.dialContextWith(func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		return nil, errors.New("dial attempted")
	})
	for _, addr := range []string{"[64:ff9b::7f00:1]:80", "[2002:7f00:1::]:443", "[::7f00:1]:80", "[::ffff:7f00:1]:80", "198.18.0.1:80", "240.0.0.1:80"} {
		_, err := dial(context.Background(), "tcp", addr)
		var de *deniedError
		if !errors.As(err, &de) {
			t.Errorf("%s: %v, want a refusal", addr, err)
		}
	}
	if len(dialed) > 0 {
		t.Errorf("dialled %v", dialed)
	}
}
