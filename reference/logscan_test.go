package reference

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// clientIP is the distinctive loopback address every client of
// TestNoAddressInAnyErrorLog connects from.
var clientIP = netip.MustParseAddr("127.0.0.77")

// waitLog waits (bounded) until the log holds substr.
func waitLog(t *testing.T, srv testServer, substr string) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); !strings.Contains(srv.log.String(), substr); {
		if time.Now().After(end) {
			t.Fatalf("the log never showed %q:\n%s", substr, srv.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoAddressInAnyErrorLog is finding 3 of issue 10: an upload reset by
// the client logged "read tcp SERVER->CLIENT: connection reset by peer".
// It provokes every network error path known to log (a reset mid-upload,
// TLS handshake failures on the upload, c2s and s2s ports, a refused
// inbound s2s stream, an unreachable s2s peer) from one distinctive
// address, and scans the whole log for that address and the client ports.
// Positive control: the failed login from the same address is in the log
// with the address, found by the same scan.
func TestNoAddressInAnyErrorLog(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there: outbound s2s fails
	srv := startServer(t, WithHTTPAddr("127.0.0.1:0"), WithS2SAddr("127.0.0.1:0"),
		WithS2SHost("dead.example", deadAddr), WithS2SStaticHostsOnly())
	srv.user(t, "alice", "pw")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := srv.Addrs()
	var ports []int
	dial := func(addr string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: clientIP.AsSlice()}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, c.LocalAddr().(*net.TCPAddr).Port)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		return c
	}
	reset := func(c net.Conn) {
		for c != nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
				break
			}
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
				continue
			}
			break
		}
		c.Close()
	}
	opts := []xmppclient.Option{xmppclient.WithInsecureSkipVerify(), xmppclient.WithDomain("localhost"), xmppclient.WithLocalAddr(clientIP)}

	// The positive control: a failed login from clientIP.
	if _, err := xmppclient.Connect(ctx, a.C2S, "alice", "wrong", opts...); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	alice, err := xmppclient.Connect(ctx, a.C2S, "alice", "pw", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close(ctx)

	// 1. An upload reset by the client mid-body.
	slot, err := alice.RequestUploadSlot(ctx, "upload.localhost", "f.bin", 1<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(slot.PutURL)
	tc := tls.Client(dial(a.HTTP), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	fmt.Fprintf(tc, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", u.RequestURI(), u.Host, 1<<20, strings.Repeat("x", 64<<10))
	time.Sleep(100 * time.Millisecond) // let the server start reading the body
	reset(tc)
	waitLog(t, srv, "upload refused")

	// 2. TLS handshake failures: plain text to the upload port, to direct
	// TLS c2s, and after STARTTLS on s2s.
	c := dial(a.HTTP)
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	io.Copy(io.Discard, c)
	c.Close()
	waitLog(t, srv, "TLS handshake error")
	c = dial(a.C2STLS)
	io.WriteString(c, "<stream:stream>")
	io.Copy(io.Discard, c)
	c.Close()
	c = dial(a.S2S)
	fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='evil.example' to='localhost' version='1.0'>")
	br := bufio.NewReader(c)
	readUntil := func(s string) {
		var got strings.Builder
		for !strings.Contains(got.String(), s) {
			b, err := br.ReadByte()
			if err != nil {
				t.Fatalf("s2s: waiting for %q: %v (got %q)", s, err, got.String())
			}
			got.WriteByte(b)
		}
	}
	readUntil("</stream:features>")
	io.WriteString(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	readUntil("<proceed")
	io.WriteString(c, "this is not a TLS record at all\r\n")
	io.Copy(io.Discard, br)
	reset(c)
	waitLog(t, srv, "inbound TLS handshake refused")

	// 3. Inbound s2s reset mid-stream, and a stream error.
	c = dial(a.S2S)
	io.WriteString(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='elsewhere.example' version='1.0'>")
	io.Copy(io.Discard, c)
	c = dial(a.S2S)
	io.WriteString(c, "<stream:str")
	reset(c)

	// 4. An unreachable s2s peer: the outbound stream fails.
	alice.Send(ctx, "<message to='bob@dead.example' type='chat' id='m1'><body>x</body></message>")
	waitLog(t, srv, "s2s: outbound stream failed")

	// The scan: the client address, in the forms a log may hold it, and
	// the client ports next to a separator.
	needles := []string{clientIP.String(), "::ffff:" + clientIP.String(), "7f00004d", "77.0.0.127"}
	var portRE []*regexp.Regexp
	for _, p := range ports {
		portRE = append(portRE, regexp.MustCompile(fmt.Sprintf(`[:=\]]%d\b`, p)))
	}
	control := 0
	for _, line := range strings.Split(srv.log.String(), "\n") {
		hit := false
		for _, n := range needles {
			hit = hit || strings.Contains(line, n)
		}
		for _, re := range portRE {
			hit = hit || re.MatchString(line)
		}
		if !hit {
			continue
		}
		if strings.Contains(line, `msg="failed login"`) && strings.Contains(line, "addr="+clientIP.String()) {
			control++
			continue
		}
		t.Errorf("client address or port in a log line: %s", line)
	}
	if control == 0 {
		t.Fatalf("positive control: the failed login's address is not in the log:\n%s", srv.log.String())
	}
	t.Logf("scanned %d bytes of log: the address only in %d failed-login line(s)", len(srv.log.String()), control)
}
