package reference

import (
	"encoding/base64"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// TestSASLExchangePaths: the less travelled paths of a SCRAM exchange
// (RFC 6120 §6.4, RFC 5802): no initial response, abort, bad base64 in the
// auth and in a response, an element that is not a response, an authzid
// naming another account.
func TestSASLExchangePaths(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "alice-pw")
	const mech = "SCRAM-SHA-1"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sasl := func(name, text string) string {
		return "<" + name + " xmlns='" + ns.SASL + "'>" + text + "</" + name + ">"
	}
	auth := func(text string) string {
		return "<auth xmlns='" + ns.SASL + "' mechanism='" + mech + "'>" + text + "</auth>"
	}
	conversation := func(t *testing.T, authz string) *scram.ClientConversation {
		cl, err := scram.SHA1.NewClient("alice", "alice-pw", authz)
		if err != nil {
			t.Fatal(err)
		}
		return cl.NewConversation()
	}
	// step answers a challenge with the conversation's next message.
	step := func(t *testing.T, c *tclient, conv *scram.ClientConversation, challenge *wire.Element) {
		t.Helper()
		if challenge.Name.Local != "challenge" {
			t.Fatalf("expected a challenge, got %s", challenge)
		}
		in, err := base64.StdEncoding.DecodeString(challenge.Text())
		if err != nil {
			t.Fatal(err)
		}
		out, err := conv.Step(string(in))
		if err != nil {
			t.Fatalf("client step: %v", err)
		}
		c.send("%s", sasl("response", b64(out)))
	}
	failure := func(t *testing.T, el *wire.Element, cond string) {
		t.Helper()
		if el.Name.Local != "failure" || el.Child(ns.SASL, cond) == nil {
			t.Fatalf("expected failure %s, got %s", cond, el)
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, c *tclient)
	}{
		{"no initial response", func(t *testing.T, c *tclient) {
			conv := conversation(t, "")
			c.send("%s", auth("="))
			if el := c.next(); el.Name.Local != "challenge" || el.Text() != "" {
				t.Fatalf("expected an empty challenge, got %s", el)
			}
			first, _ := conv.Step("")
			c.send("%s", sasl("response", b64(first)))
			step(t, c, conv, c.next())
			if el := c.next(); el.Name.Local != "success" {
				t.Fatalf("expected success, got %s", el)
			}
		}},
		{"abort", func(t *testing.T, c *tclient) {
			first, _ := conversation(t, "").Step("")
			c.send("%s", auth(b64(first)))
			if el := c.next(); el.Name.Local != "challenge" {
				t.Fatalf("expected a challenge, got %s", el)
			}
			c.send("<abort xmlns='%s'/>", ns.SASL)
			failure(t, c.next(), "aborted")
		}},
		{"bad base64 in auth", func(t *testing.T, c *tclient) {
			c.send("%s", auth("!!not base64!!"))
			failure(t, c.next(), "incorrect-encoding")
		}},
		{"bad base64 in a response", func(t *testing.T, c *tclient) {
			first, _ := conversation(t, "").Step("")
			c.send("%s", auth(b64(first)))
			c.next()
			c.send("%s", sasl("response", "!!not base64!!"))
			failure(t, c.next(), "incorrect-encoding")
		}},
		{"not a response", func(t *testing.T, c *tclient) {
			first, _ := conversation(t, "").Step("")
			c.send("%s", auth(b64(first)))
			c.next()
			c.send("<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>")
			if el := c.next(); el.Name.Local != "error" || el.Child(ns.StreamErrors, "not-authorized") == nil {
				t.Fatalf("expected stream error not-authorized, got %s", el)
			}
		}},
		{"authzid of another account", func(t *testing.T, c *tclient) {
			conv := conversation(t, "bob@localhost")
			first, _ := conv.Step("")
			c.send("%s", auth(b64(first)))
			step(t, c, conv, c.next())
			failure(t, c.next(), "invalid-authzid")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, secure(t, srv.Server)) })
	}
}
