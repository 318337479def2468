package referencetest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/reference/referencetest"
)

// TestStartAndConnect: the server listens on loopback, runs on the test
// clock, logs into Logs; Connect provisions accounts (twice for the same
// user is fine) and the sessions exchange a message.
func TestStartAndConnect(t *testing.T) {
	srv := referencetest.Start(t, reference.WithDomain("example.test"))
	for _, a := range []string{srv.Addrs().C2S, srv.Addrs().C2STLS} {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("listener %q not on loopback", a)
		}
	}
	if srv.TestClock() == nil {
		t.Error("no test clock")
	}
	if !strings.Contains(srv.Logs.String(), "reference server started") {
		t.Errorf("start not logged:\n%s", srv.Logs.String())
	}
	alice := srv.Connect(t, "alice")
	bob := srv.Connect(t, "bob")
	srv.AddUser(t, "bob")
	if got := alice.JID(); !strings.HasPrefix(got, "alice@example.test/") {
		t.Errorf("alice bound %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bob.Send(ctx, "<presence/>"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendMessage(ctx, bob.JID(), "hi"); err != nil {
		t.Fatal(err)
	}
	m, err := bob.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
	if err != nil || m.Body() != "hi" {
		t.Fatalf("bob got %q, %v", m.Body(), err)
	}
	if _, err := xmppclient.Connect(ctx, srv.Addrs().C2S, "bob", "wrong", xmppclient.WithDomain("example.test"), xmppclient.WithInsecureSkipVerify()); err == nil {
		t.Error("login with a password other than Password(user) succeeded")
	}
}
