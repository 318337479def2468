package reference

import (
	"bytes"
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/syncbuf"

	"github.com/xmppcheck/xmppcheck/spec/policies"
)

type testServer struct {
	*Server
	log *syncbuf.Buffer
}

func startServer(t testing.TB, opts ...Option) testServer {
	t.Helper()
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	logs := &syncbuf.Buffer{}
	base := []Option{
		WithDataDir(filepath.Join(root, "data")), WithKeyFile(filepath.Join(root, "at-rest.key")),
		WithC2SAddr("127.0.0.1:0"), WithC2STLSAddr("127.0.0.1:0"), WithLogWriter(logs), WithTestClock(),
	}
	srv, err := New(pol, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return testServer{srv, logs}
}

func (s testServer) user(t testing.TB, name, pass string) {
	t.Helper()
	if err := s.CreateUser(context.Background(), name, pass); err != nil {
		t.Fatal(err)
	}
}

func (s testServer) dump(t testing.TB) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLoginAndMessageOnline(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "alice-pass")
	srv.user(t, "bob", "bob-pass")
	alice := login(t, srv.Server, "alice", "alice-pass", "phone")
	bob := login(t, srv.Server, "bob", "bob-pass", "laptop")
	if alice.jid != "alice@localhost/phone" {
		t.Fatalf("bound %s", alice.jid)
	}
	bob.send("<presence/>")
	bob.sync()
	alice.send("<message to='bob@localhost' type='chat' id='m1' from='mallory@evil'><body>online-body-marker</body></message>")
	m := bob.expect("message", isMessage)
	if m.Get("from") != "alice@localhost/phone" || m.ChildText(ns.Client, "body") != "online-body-marker" {
		t.Fatalf("got %s", m)
	}
	// privacy.no-message-history: nothing of it at rest.
	if d := srv.dump(t); strings.Contains(d, "online-body-marker") {
		t.Fatalf("a message delivered online was stored:\n%s", d)
	}
}

func TestTLSFloor(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name string
		max  uint16
		ok   bool
	}{{"TLS 1.1", tls.VersionTLS11, false}, {"TLS 1.2", tls.VersionTLS12, true}, {"TLS 1.3", tls.VersionTLS13, true}} {
		t.Run("starttls "+tc.name, func(t *testing.T) {
			c := rawDial(t, srv.Addrs().C2S, "localhost")
			c.open()
			err := c.startTLS(tls.VersionTLS10, tc.max)
			if (err == nil) != tc.ok {
				t.Fatalf("handshake err=%v, want ok=%v", err, tc.ok)
			}
		})
		t.Run("direct "+tc.name, func(t *testing.T) {
			tc2 := tc
			conn, err := tls.Dial("tcp", srv.Addrs().C2STLS, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tc2.max, NextProtos: []string{"xmpp-client"}})
			if (err == nil) != tc2.ok {
				t.Fatalf("handshake err=%v, want ok=%v", err, tc2.ok)
			}
			if err == nil {
				if p := conn.ConnectionState().NegotiatedProtocol; p != "xmpp-client" {
					t.Errorf("ALPN %q", p)
				}
				conn.Close()
			}
		})
	}
}
