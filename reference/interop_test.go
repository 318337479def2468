package reference

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"net"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// TestMelliumClientInterop logs in with mellium.im/xmpp's client — an
// independent implementation of streams, STARTTLS, SCRAM (with tls-exporter
// channel binding for -PLUS) and binding — and exchanges messages both ways.
func TestMelliumClientInterop(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "mel", "mellium-pass")
	srv.user(t, "peer", "peer-pass")
	peer := login(t, srv.Server, "peer", "peer-pass", "p")
	peer.send("<presence/>")
	peer.sync()
	for _, tc := range []struct {
		name   string
		mech   sasl.Mechanism
		direct bool
		maxTLS uint16
	}{
		{"SCRAM-SHA-1 STARTTLS 1.2", sasl.ScramSha1, false, tls.VersionTLS12},
		{"SCRAM-SHA-256 STARTTLS 1.3", sasl.ScramSha256, false, tls.VersionTLS13},
		{"SCRAM-SHA-256-PLUS STARTTLS 1.3", sasl.ScramSha256Plus, false, tls.VersionTLS13},
		{"SCRAM-SHA-1-PLUS direct TLS 1.3", sasl.ScramSha1Plus, true, tls.VersionTLS13},
		{"SCRAM-SHA-1 direct TLS 1.2", sasl.ScramSha1, true, tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", MaxVersion: tc.maxTLS, NextProtos: []string{"xmpp-client"}}
			origin := jid.MustParse("mel@localhost/m")
			var conn net.Conn
			var err error
			features := []xmpp.StreamFeature{xmpp.SASL("", "mellium-pass", tc.mech), xmpp.BindResource()}
			if tc.direct {
				conn, err = tls.Dial("tcp", srv.Addrs().C2STLS, cfg)
			} else {
				conn, err = net.Dial("tcp", srv.Addrs().C2S)
				features = append([]xmpp.StreamFeature{xmpp.StartTLS(cfg)}, features...)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			sess, err := xmpp.NewClientSession(ctx, origin, conn, features...)
			if err != nil {
				t.Fatalf("negotiation: %v", err)
			}
			defer sess.Close()
			// mellium's BindResource lets the server pick the resource.
			me := sess.LocalAddr()
			if me.Bare().String() != "mel@localhost" || me.Resourcepart() == "" {
				t.Fatalf("bound %s", me)
			}
			got := make(chan string, 1)
			go sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
				if start.Name.Local != "message" {
					return nil
				}
				el, err := wire.FromTokens(*start, r)
				if err == nil {
					got <- el.ChildText("jabber:client", "body")
				}
				return nil
			}))
			// mellium → peer
			msg := stanza.Message{To: jid.MustParse("peer@localhost"), Type: stanza.ChatMessage}
			body := xmlstream.Wrap(xmlstream.Token(xml.CharData("from-mellium")), xml.StartElement{Name: xml.Name{Local: "body"}})
			if err := sess.Send(ctx, msg.Wrap(body)); err != nil {
				t.Fatal(err)
			}
			m := peer.expect("message from mellium", isMessage)
			if m.ChildText(ns.Client, "body") != "from-mellium" || m.Get("from") != me.String() {
				t.Fatalf("peer got %s", m)
			}
			// peer → mellium (full JID)
			peer.send("<message to='%s'><body>to-mellium</body></message>", me)
			select {
			case b := <-got:
				if b != "to-mellium" {
					t.Fatalf("mellium got %q", b)
				}
			case <-ctx.Done():
				t.Fatal("mellium never received the message")
			}
		})
	}
}
