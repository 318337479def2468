package xmppclient_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference/referencetest"
)

// TestAgainstReference runs the client's main paths against the real
// reference server: both TLS modes, the TLS floor, SASL failures, IBR,
// messages, roster, vCard, disco, MAM refusal, ping, transcript redaction.
func TestAgainstReference(t *testing.T) {
	srv := referencetest.Start(t)
	ctx := ctxT(t)
	a := srv.Addrs()
	if err := srv.CreateUser(ctx, "alice", "alice-pw-1"); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateUser(ctx, "bob", "bob-pw-1"); err != nil {
		t.Fatal(err)
	}
	var tr syncbuf.Buffer
	opts := []xmppclient.Option{xmppclient.WithInsecureSkipVerify(), xmppclient.WithDomain(srv.Domain()), xmppclient.WithTranscript(&tr)}

	alice, err := xmppclient.Connect(ctx, a.C2S, "alice", "alice-pw-1", opts...)
	if err != nil {
		t.Fatalf("starttls login: %v", err)
	}
	defer alice.Close(ctx)
	bob, err := xmppclient.Connect(ctx, a.C2STLS, "bob", "bob-pw-1", append(opts, xmppclient.WithTLSMode(xmppclient.DirectTLS))...)
	if err != nil {
		t.Fatalf("direct TLS login: %v", err)
	}
	defer bob.Close(ctx)

	t.Run("tls floor", func(t *testing.T) {
		_, err := xmppclient.Dial(ctx, a.C2S, xmppclient.WithInsecureSkipVerify(), xmppclient.WithTLSVersions(tls.VersionTLS10, tls.VersionTLS11))
		if err == nil {
			t.Fatal("TLS 1.0/1.1 accepted by a server whose policy floor is 1.2")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := xmppclient.Connect(ctx, a.C2S, "alice", "wrong", opts...)
		if !errors.Is(err, xmppclient.SASLNotAuthorized) {
			t.Fatalf("err = %v, want not-authorized", err)
		}
	})
	t.Run("no mechanism before TLS", func(t *testing.T) {
		c, err := xmppclient.Dial(ctx, a.C2S, xmppclient.WithTLSMode(xmppclient.NoTLS))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Abort()
		if !c.Features().StartTLSRequired {
			t.Errorf("features = %+v", c.Features())
		}
		if err := c.Authenticate(ctx, "alice", "alice-pw-1"); err == nil {
			t.Fatal("authenticated without TLS")
		}
	})
	t.Run("messages", func(t *testing.T) {
		if err := bob.SendPresence(ctx, "", "", ""); err != nil {
			t.Fatal(err)
		}
		// Stanzas are processed in order per stream: bob's own ping proves
		// his presence was handled (alice's would not).
		if _, err := bob.Ping(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.SendMessage(ctx, "bob@"+srv.Domain(), "hello bob"); err != nil {
			t.Fatal(err)
		}
		m, err := bob.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
		if err != nil || m.Body() != "hello bob" {
			t.Fatalf("%v %q", err, m.Body())
		}
	})
	t.Run("roster vcard disco", func(t *testing.T) {
		if err := alice.SetRosterItem(ctx, xmppclient.RosterItem{JID: "bob@" + srv.Domain(), Name: "Bob"}); err != nil {
			t.Fatal(err)
		}
		items, err := alice.Roster(ctx)
		if err != nil || len(items) != 1 || items[0].Name != "Bob" {
			t.Fatalf("roster %+v %v", items, err)
		}
		if err := alice.SetVCard(ctx, xmppclient.VCard{FN: "Alice A"}); err != nil {
			t.Fatal(err)
		}
		if vc, err := alice.GetVCard(ctx, ""); err != nil || vc.FN != "Alice A" {
			t.Fatalf("vcard %+v %v", vc, err)
		}
		info, err := alice.DiscoInfo(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if info.HasFeature(ns.MAM) || !info.HasFeature(ns.Ping) {
			t.Errorf("disco features %v", info.Features)
		}
		if _, err := alice.QueryArchive(ctx, ""); err == nil {
			t.Error("the reference server answered a MAM query")
		} else {
			var se *xmppclient.StanzaError
			if !errors.As(err, &se) {
				t.Errorf("MAM refusal is not a stanza error: %v", err)
			}
		}
	})
	t.Run("registration", func(t *testing.T) {
		c, err := xmppclient.Dial(ctx, a.C2S, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		rf, err := c.RegistrationForm(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rf.Fields) == 0 && len(rf.FormFields) == 0 {
			t.Fatalf("empty registration form: %s", rf.Raw)
		}
		if err := c.Register(ctx, "carol", "carol-pw-1", nil); err != nil {
			t.Fatal(err)
		}
		err = c.Register(ctx, "carol", "other", nil)
		if !errors.Is(err, stanza.Error{Condition: stanza.Conflict}) && !errors.Is(err, stanza.Error{Condition: stanza.PolicyViolation}) && !errors.Is(err, stanza.Error{Condition: stanza.NotAllowed}) {
			t.Errorf("second registration of carol: %v", err)
		}
		if err := c.Login(ctx, "carol", "carol-pw-1"); err != nil {
			t.Fatalf("login after IBR: %v", err)
		}
		if err := c.ChangePassword(ctx, "carol-pw-2"); err != nil {
			t.Fatal(err)
		}
		if err := c.Unregister(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := xmppclient.Connect(ctx, a.C2S, "carol", "carol-pw-2", opts...); !errors.Is(err, xmppclient.SASLNotAuthorized) {
			t.Errorf("login after removal: %v", err)
		}
	})
	out := tr.String()
	if !strings.Contains(out, "mechanism='SCRAM-SHA-") || !strings.Contains(out, "<username>carol</username>") {
		t.Fatal("transcript lacks the exchanges (positive control)")
	}
	for _, pw := range []string{"alice-pw-1", "bob-pw-1", "carol-pw-1", "carol-pw-2"} {
		if strings.Contains(out, pw) {
			t.Errorf("transcript contains password %q", pw)
		}
	}
}
