package s2s

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
	"github.com/xmppcheck/xmppcheck/internal/testcert"
)

// newTestCA makes a CA whose pool the nodes that must verify peers trust.
func newTestCA(t testing.TB) *testcert.CA {
	t.Helper()
	ca, err := testcert.NewCA("xmppcheck test CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes a certificate for domain signed by ca, or self-signed when ca
// is nil.
func issue(t testing.TB, ca *testcert.CA, domain string) tls.Certificate {
	t.Helper()
	var (
		c   tls.Certificate
		err error
	)
	if ca != nil {
		c, err = ca.Issue(domain)
	} else {
		c, err = testcert.SelfSigned(domain)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// node is one in-process server with a recording Deliver.
type node struct {
	srv  *Server
	addr string
	got  chan Stanza
	logs *syncbuf.Buffer
}

// listen binds a loopback port for a node before it exists, so two nodes
// can name each other in their host maps.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func startNode(t testing.TB, domain string, ln net.Listener, cert tls.Certificate, opts ...Option) *node {
	t.Helper()
	n := &node{got: make(chan Stanza, 10000), logs: &syncbuf.Buffer{}}
	if ln != nil {
		n.addr = ln.Addr().String()
	}
	base := []Option{
		WithCertificates(cert), WithStaticHostsOnly(), WithSetupTimeout(10 * time.Second),
		WithLogger(slog.New(slog.NewTextHandler(io.MultiWriter(n.logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithDeliver(func(_ context.Context, s Stanza) { n.got <- s }),
	}
	srv, err := New(domain, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	if ln != nil {
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return n
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func mustStanza(t testing.TB, raw string) Stanza {
	t.Helper()
	s, err := ParseStanza([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitStanza waits for the next delivered stanza. The generous bound only
// turns a hang into a failure; no test asserts on speed.
func (n *node) waitStanza(t testing.TB) Stanza {
	t.Helper()
	select {
	case s := <-n.got:
		return s
	case <-time.After(60 * time.Second):
		t.Fatal("no stanza delivered")
		return Stanza{}
	}
}

// rawPeer is a hand-driven server stream for protocol tests.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
	sr   *streamReader
}

func dialRaw(t testing.TB, addr string) *rawPeer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, conn: c}
}

func (p *rawPeer) send(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.conn, s); err != nil {
		p.t.Fatal(err)
	}
}

// open sends a stream header and reads the answer's header and features.
func (p *rawPeer) open(from, to string) (id string, feats *element) {
	p.t.Helper()
	p.send(streamHeader(from, to, ""))
	p.sr = newStreamReader(p.conn, DefaultMaxElement)
	h, err := p.sr.header()
	if err != nil {
		p.t.Fatal(err)
	}
	f, err := p.sr.next()
	if err != nil {
		p.t.Fatal(err)
	}
	return headerAttr(h, "id"), f
}

// starttls negotiates TLS with the given version cap; it returns the
// handshake error.
func (p *rawPeer) starttls(maxVersion uint16) error {
	p.t.Helper()
	return p.starttlsWith(maxVersion)
}

// starttlsWith is starttls presenting client certificates.
func (p *rawPeer) starttlsWith(maxVersion uint16, certs ...tls.Certificate) error {
	p.t.Helper()
	p.send("<starttls xmlns='" + ns.TLS + "'/>")
	el, err := p.sr.next()
	if err != nil || el.XMLName.Local != "proceed" {
		p.t.Fatalf("starttls: %v %+v", err, el)
	}
	tc := tls.Client(p.conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion, Certificates: certs})
	if err := tc.Handshake(); err != nil {
		return err
	}
	p.conn = tc
	return nil
}

func (p *rawPeer) next() *element {
	p.t.Helper()
	el, err := p.sr.next()
	if err != nil {
		p.t.Fatal(err)
	}
	return el
}
