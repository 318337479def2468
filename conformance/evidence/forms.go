package evidence

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
)

// AddressNeedle returns a needle for a client address in every form a log
// line or a stored record may hold it:
//
//   - dotted ("127.0.0.5"), with a port suffix found by the same prefix;
//   - IPv4-mapped IPv6 ("::ffff:127.0.0.5", "::ffff:7f00:5", expanded);
//   - hexadecimal ("7f000005", upper case too, and "0x7f000005");
//   - packed bytes (4-byte network order, 4-byte little-endian, 16-byte
//     IPv4-mapped);
//   - the decimal integer ("2130706437");
//   - reverse-DNS order ("5.0.0.127.in-addr.arpa" and "5.0.0.127").
//
// IPv6 addresses get their compressed, expanded, packed, hex and ip6.arpa
// nibble forms.
func AddressNeedle(a netip.Addr) Needle {
	a = a.Unmap()
	n := Needle{What: "client address " + a.String()}
	add := func(name string, b []byte) {
		for _, f := range n.Forms {
			if string(f.Bytes) == string(b) {
				return
			}
		}
		n.Forms = append(n.Forms, Form{Name: name, Bytes: b})
	}
	if a.Is4() {
		v4 := a.As4()
		u := binary.BigEndian.Uint32(v4[:])
		mapped := netip.AddrFrom16(netip.AddrFrom4(v4).As16())
		add("dotted", []byte(a.String()))
		add("ipv4-mapped", []byte("::ffff:"+a.String()))
		add("ipv4-mapped", []byte("::FFFF:"+a.String()))
		add("ipv4-mapped-hex", []byte(mapped.StringExpanded()[len("0000:0000:0000:0000:0000:"):]))
		add("ipv4-mapped-hex", []byte(fmt.Sprintf("::ffff:%x:%x", v4[0:2], v4[2:4])))
		add("ipv4-mapped-hex", []byte(fmt.Sprintf("::ffff:%x:%x", u>>16, u&0xffff)))
		add("ipv4-mapped-expanded", []byte(mapped.StringExpanded()))
		add("hex", []byte(hex.EncodeToString(v4[:])))
		add("hex", []byte(strings.ToUpper(hex.EncodeToString(v4[:]))))
		le := []byte{v4[3], v4[2], v4[1], v4[0]}
		add("hex-little-endian", []byte(hex.EncodeToString(le)))
		add("hex-little-endian", []byte(strings.ToUpper(hex.EncodeToString(le))))
		add("decimal", []byte(strconv.FormatUint(uint64(u), 10)))
		add("packed", v4[:])
		add("packed-little-endian", le)
		m16 := mapped.As16()
		add("packed-ipv4-mapped", m16[:])
		rev := fmt.Sprintf("%d.%d.%d.%d", v4[3], v4[2], v4[1], v4[0])
		add("reverse-dns", []byte(rev+".in-addr.arpa"))
		add("reverse", []byte(rev))
		return n
	}
	b := a.As16()
	add("ipv6", []byte(a.String()))
	add("ipv6-upper", []byte(strings.ToUpper(a.String())))
	add("ipv6-expanded", []byte(a.StringExpanded()))
	add("hex", []byte(hex.EncodeToString(b[:])))
	add("hex", []byte(strings.ToUpper(hex.EncodeToString(b[:]))))
	add("packed", b[:])
	h := hex.EncodeToString(b[:])
	nib := make([]string, 0, 32)
	for i := len(h) - 1; i >= 0; i-- {
		nib = append(nib, h[i:i+1])
	}
	add("reverse-dns", []byte(strings.Join(nib, ".")+".ip6.arpa"))
	return n
}

// PasswordNeedle returns a secret needle for a password in every encoding
// it may be stored or logged in: plain, base64 (standard and URL alphabets,
// at each of the three byte alignments a password embedded in a larger
// base64 string can take, as in a SASL PLAIN message), hexadecimal, UTF-16
// (both byte orders), and percent-encoded. Hits mask the match.
func PasswordNeedle(pw string) Needle {
	n := Needle{What: "the account password", Secret: true}
	add := func(name string, b []byte) {
		if len(b) == 0 || slices.ContainsFunc(n.Forms, func(f Form) bool { return string(f.Bytes) == string(b) }) {
			return
		}
		n.Forms = append(n.Forms, Form{Name: name, Bytes: b})
	}
	p := []byte(pw)
	add("plain", p)
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
		for shift := range 3 {
			add(enc.name, base64Core(enc.e, p, shift))
		}
	}
	add("hex", []byte(hex.EncodeToString(p)))
	add("hex", []byte(strings.ToUpper(hex.EncodeToString(p))))
	u := utf16.Encode([]rune(pw))
	le, be := make([]byte, 2*len(u)), make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(le[2*i:], r)
		binary.BigEndian.PutUint16(be[2*i:], r)
	}
	add("utf-16le", le)
	add("utf-16be", be)
	add("percent-encoded", []byte(percentEncode(pw)))
	return n
}

// base64Core returns the base64 characters that encode p whatever the
// bytes around it, when p starts shift bytes (0, 1 or 2) into a 3-byte
// group: the characters fully determined by p's bytes alone.
func base64Core(e *base64.Encoding, p []byte, shift int) []byte {
	pre := make([]byte, shift)
	buf := append(pre, p...)
	enc := e.EncodeToString(buf)
	// Characters are 6-bit groups. Group k covers bits [6k, 6k+6) of buf.
	// It depends only on p when it lies within bits [8*shift, 8*len(buf)).
	startBit, endBit := 8*shift, 8*len(buf)
	first := (startBit + 5) / 6
	last := endBit / 6 // exclusive
	if last <= first {
		return nil
	}
	core := enc[first:last]
	if len(core) < 4 { // too short to be a meaningful search (false hits)
		return nil
	}
	return []byte(core)
}

func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TextNeedle returns a needle for user-stored text (a message body, a vCard
// field, a roster name) in plain, UTF-16 and base64 forms, for the
// encrypted-at-rest and no-history scans. Hits are not masked.
func TextNeedle(what, s string) Needle {
	n := PasswordNeedle(s)
	n.What, n.Secret = what, false
	return n
}
