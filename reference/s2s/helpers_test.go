package s2s

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
)

// testCA issues certificates; with a nil CA the certificate is self-signed.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xmppcheck test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

func issue(t testing.TB, ca *testCA, domain string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
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
