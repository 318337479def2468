package interop_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/reference/referencetest"
)

// freeAddr reserves a loopback port for a server that must be named in
// another's options before either starts.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReference starts a reference server for domain with s2s on s2sAddr.
func startReference(t testing.TB, domain, s2sAddr string, opts ...reference.Option) *referencetest.Server {
	t.Helper()
	base := []reference.Option{reference.WithDomain(domain), reference.WithC2STLSAddr(""), reference.WithS2SAddr(s2sAddr)}
	return referencetest.Start(t, append(base, opts...)...)
}

// connect logs user in as user@DOMAIN/r and sends initial presence.
func connect(t testing.TB, srv *referencetest.Server, user string) *xmppclient.Client {
	t.Helper()
	cl := srv.Connect(t, user, xmppclient.WithResource("r"))
	if err := cl.Send(context.Background(), "<presence/>"); err != nil {
		t.Fatal(err)
	}
	return cl
}

func recv(t *testing.T, cl *xmppclient.Client, match func(xmppclient.Stanza) bool) xmppclient.Stanza {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := cl.RecvMatch(ctx, match)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTwoReferenceServers federates two reference servers on loopback
// (a.example and b.example, each its own process state, store and key):
// messages and presence both ways between their users, and a bounce for a
// domain nobody serves.
func TestTwoReferenceServers(t *testing.T) {
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := startReference(t, "a.example", addrA, reference.WithS2SHost("b.example", addrB))
	b := startReference(t, "b.example", addrB, reference.WithS2SHost("a.example", addrA))
	alice, bob := connect(t, a, "alice"), connect(t, b, "bob")
	ctx := context.Background()

	if err := alice.Send(ctx, "<message to='bob@b.example' type='chat' id='m1'><body>hello bob</body></message>"); err != nil {
		t.Fatal(err)
	}
	m := recv(t, bob, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
	if m.From != "alice@a.example/r" || m.Body() != "hello bob" || m.Type != "chat" {
		t.Fatalf("bob got %s", m.Raw)
	}
	if err := bob.Send(ctx, "<message to='alice@a.example/r' type='chat' id='m2'><body>hello alice</body></message>"); err != nil {
		t.Fatal(err)
	}
	m = recv(t, alice, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
	if m.From != "bob@b.example/r" || m.Body() != "hello alice" {
		t.Fatalf("alice got %s", m.Raw)
	}
	// Directed presence across the federation.
	if err := alice.Send(ctx, "<presence to='bob@b.example/r'><status>here</status></presence>"); err != nil {
		t.Fatal(err)
	}
	p := recv(t, bob, func(s xmppclient.Stanza) bool { return s.Kind() == "presence" && strings.HasPrefix(s.From, "alice@") })
	if p.From != "alice@a.example/r" || !strings.Contains(p.Raw, "here") {
		t.Fatalf("bob got presence %s", p.Raw)
	}

	// A presence subscription across the federation (RFC 6121 §3.1): alice
	// asks, bob approves, alice then sees bob online.
	if err := alice.Send(ctx, "<presence to='bob@b.example' type='subscribe'/>"); err != nil {
		t.Fatal(err)
	}
	p = recv(t, bob, func(s xmppclient.Stanza) bool { return s.Kind() == "presence" && s.Type == "subscribe" })
	if p.From != "alice@a.example" {
		t.Fatalf("bob got subscription request %s", p.Raw)
	}
	if err := bob.Send(ctx, "<presence to='alice@a.example' type='subscribed'/>"); err != nil {
		t.Fatal(err)
	}
	p = recv(t, alice, func(s xmppclient.Stanza) bool {
		return s.Kind() == "presence" && s.From == "bob@b.example/r" && s.Type == ""
	})
	if !strings.HasPrefix(p.From, "bob@b.example") {
		t.Fatalf("alice got %s", p.Raw)
	}

	// A domain no server answers for: an error back to the sender.
	if err := alice.Send(ctx, "<message to='carol@nowhere.example' type='chat' id='m3'><body>anyone?</body></message>"); err != nil {
		t.Fatal(err)
	}
	e := recv(t, alice, func(s xmppclient.Stanza) bool { return s.ID == "m3" })
	var se *xmppclient.StanzaError
	if !errors.As(e.Err(), &se) || se.Condition != stanza.RemoteServerNotFound {
		t.Fatalf("got %s, want remote-server-not-found", e.Raw)
	}
	// Neither server logged an address: peers are named by domain.
	if strings.Contains(a.Logs.String(), "127.0.0.1") {
		t.Errorf("a.example logged an address:\n%s", a.Logs.String())
	}
	if !strings.Contains(a.Logs.String(), "b.example") {
		t.Error("positive control: a.example's log never names its peer")
	}
}
