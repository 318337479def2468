package xmppclient_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, s *fakexmpp.Server, user, pass string, opts ...xmppclient.Option) *xmppclient.Client {
	t.Helper()
	opts = append([]xmppclient.Option{xmppclient.WithRootCAs(s.CertPool()), xmppclient.WithDomain(s.Domain())}, opts...)
	c, err := xmppclient.Connect(ctxT(t), s.Addr(), user, pass, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestLoginModes(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("alice", "pw-alice")
	tests := []struct {
		name  string
		addr  func() string
		opts  []xmppclient.Option
		mech  string
		tlsOK bool
	}{
		{"starttls default", s.Addr, nil, "SCRAM-SHA-256", true},
		{"direct tls", s.TLSAddr, []xmppclient.Option{xmppclient.WithTLSMode(xmppclient.DirectTLS)}, "SCRAM-SHA-256", true},
		{"scram-sha-1", s.Addr, []xmppclient.Option{xmppclient.WithMechanisms("SCRAM-SHA-1")}, "SCRAM-SHA-1", true},
		{"plain", s.Addr, []xmppclient.Option{xmppclient.WithMechanisms("PLAIN")}, "PLAIN", true},
		{"tls 1.2 only", s.Addr, []xmppclient.Option{xmppclient.WithTLSVersions(tls.VersionTLS12, tls.VersionTLS12)}, "SCRAM-SHA-256", true},
		{"scram cache", s.Addr, []xmppclient.Option{xmppclient.WithSCRAMCache(&xmppclient.SCRAMCache{})}, "SCRAM-SHA-256", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]xmppclient.Option{xmppclient.WithRootCAs(s.CertPool())}, tt.opts...)
			c, err := xmppclient.Connect(ctxT(t), tt.addr(), "alice", "pw-alice", opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if !strings.HasPrefix(c.JID(), "alice@localhost/") {
				t.Errorf("JID = %q", c.JID())
			}
			if st := c.TLSState(); st == nil || !st.HandshakeComplete {
				t.Errorf("no TLS state")
			}
			if _, err := c.Ping(ctxT(t), ""); err != nil {
				t.Errorf("ping: %v", err)
			}
			tm := c.Timings()
			if tm.Connect <= 0 || tm.TLS <= 0 || tm.Auth <= 0 || tm.Bind <= 0 {
				t.Errorf("timings not all measured: %+v", tm)
			}
		})
	}
}

func TestTLSVersionRefused(t *testing.T) {
	s := fakexmpp.Start(t) // accepts TLS 1.2+
	_, err := xmppclient.Dial(ctxT(t), s.Addr(), xmppclient.WithRootCAs(s.CertPool()),
		xmppclient.WithTLSVersions(tls.VersionTLS10, tls.VersionTLS11))
	if err == nil {
		t.Fatal("TLS 1.0/1.1 handshake succeeded against a TLS 1.2+ server")
	}
	if !strings.Contains(err.Error(), "tls handshake") {
		t.Errorf("error does not name the handshake: %v", err)
	}
}

func TestCertificateVerification(t *testing.T) {
	s := fakexmpp.Start(t)
	if _, err := xmppclient.Dial(ctxT(t), s.Addr()); err == nil {
		t.Fatal("self-signed certificate accepted without roots")
	}
	c, err := xmppclient.Dial(ctxT(t), s.Addr(), xmppclient.WithInsecureSkipVerify())
	if err != nil {
		t.Fatalf("insecure: %v", err)
	}
	c.Close(context.Background())
}

func TestSASLFailures(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("bob", "right")
	dial := func(opts ...xmppclient.Option) *xmppclient.Client {
		c, err := xmppclient.Dial(ctxT(t), s.Addr(), append([]xmppclient.Option{xmppclient.WithRootCAs(s.CertPool())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Abort() })
		return c
	}
	tests := []struct {
		name       string
		inject     [2]string
		mechs      []string
		pass       string
		want       xmppclient.SASLCondition
		notWant    xmppclient.SASLCondition
		wantText   string
		wantNoMech bool
	}{
		{name: "wrong password scram", pass: "wrong", want: xmppclient.SASLNotAuthorized, notWant: xmppclient.SASLTemporaryAuthFailure},
		{name: "wrong password plain", mechs: []string{"PLAIN"}, pass: "wrong", want: xmppclient.SASLNotAuthorized, wantText: "wrong username or password"},
		{name: "policy refusal", inject: [2]string{"temporary-auth-failure", "Too many failed logins, try later"}, pass: "right",
			want: xmppclient.SASLTemporaryAuthFailure, notWant: xmppclient.SASLNotAuthorized, wantText: "Too many failed logins, try later"},
		{name: "account disabled", inject: [2]string{"account-disabled", ""}, pass: "right", want: xmppclient.SASLAccountDisabled},
		{name: "no common mechanism", mechs: []string{"SCRAM-SHA-512"}, pass: "right", wantNoMech: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetAuthFailure(tt.inject[0], tt.inject[1])
			defer s.SetAuthFailure("", "")
			var opts []xmppclient.Option
			if tt.mechs != nil {
				opts = append(opts, xmppclient.WithMechanisms(tt.mechs...))
			}
			c := dial(opts...)
			err := c.Authenticate(ctxT(t), "bob", tt.pass)
			if tt.wantNoMech {
				if !errors.Is(err, xmppclient.ErrNoMechanism) {
					t.Fatalf("err = %v, want ErrNoMechanism", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if tt.notWant != "" && errors.Is(err, tt.notWant) {
				t.Fatalf("err %v also matches %s", err, tt.notWant)
			}
			var se *xmppclient.SASLError
			if !errors.As(err, &se) {
				t.Fatalf("err %T is not a *SASLError", err)
			}
			if tt.wantText != "" && se.Text != tt.wantText {
				t.Errorf("Text = %q, want %q", se.Text, tt.wantText)
			}
			// RFC 6120 §6.4.5: the stream survives a failure; retrying with
			// the right password works once the injection is lifted.
			s.SetAuthFailure("", "")
			if err := c.Authenticate(ctxT(t), "bob", "right"); err != nil {
				t.Fatalf("retry on the same stream: %v", err)
			}
		})
	}
}

func TestNoTLS(t *testing.T) {
	t.Run("compliant server offers no mechanism before TLS", func(t *testing.T) {
		s := fakexmpp.Start(t)
		s.AddUser("carol", "pw")
		c, err := xmppclient.Dial(ctxT(t), s.Addr(), xmppclient.WithTLSMode(xmppclient.NoTLS))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Abort()
		f := c.Features()
		if !f.StartTLSRequired || len(f.Mechanisms) != 0 {
			t.Errorf("features = %+v", f)
		}
		if c.TLSState() != nil {
			t.Error("TLS state on a plaintext stream")
		}
		if err := c.Authenticate(ctxT(t), "carol", "pw"); !errors.Is(err, xmppclient.ErrNoMechanism) {
			t.Errorf("err = %v, want ErrNoMechanism", err)
		}
	})
	t.Run("non-compliant server authenticates in plaintext", func(t *testing.T) {
		s := fakexmpp.Start(t, fakexmpp.WithoutTLSRequirement())
		s.AddUser("carol", "pw")
		c, err := xmppclient.Connect(ctxT(t), s.Addr(), "carol", "pw", xmppclient.WithTLSMode(xmppclient.NoTLS), xmppclient.WithMechanisms("PLAIN"))
		if err != nil {
			t.Fatalf("plaintext login against a server that allows it: %v", err)
		}
		c.Close(context.Background())
	})
	t.Run("starttls mode against a server without starttls", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			buf := make([]byte, 4096)
			conn.Read(buf)
			conn.Write([]byte(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`))
			conn.Read(buf)
		}()
		_, err = xmppclient.Dial(ctxT(t), ln.Addr().String())
		if !errors.Is(err, xmppclient.ErrNoStartTLS) {
			t.Fatalf("err = %v, want ErrNoStartTLS", err)
		}
	})
}

func TestStreamErrorAndTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 4096)
				n, _ := conn.Read(buf)
				if bytes.Contains(buf[:n], []byte("policy")) {
					conn.Write([]byte(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many connections</text></stream:error></stream:stream>`))
					return
				}
				time.Sleep(3 * time.Second) // never answers
			}()
		}
	}()
	_, err = xmppclient.Dial(ctxT(t), ln.Addr().String(), xmppclient.WithDomain("policy"))
	var se *xmppclient.StreamError
	if !errors.As(err, &se) || !errors.Is(err, xmppclient.StreamPolicyViolation) || se.Text != "too many connections" {
		t.Fatalf("err = %v, want policy-violation stream error with text", err)
	}
	if !errors.Is(err, xmppclient.ErrClosed) {
		t.Errorf("a stream error should also be ErrClosed")
	}
	_, err = xmppclient.Dial(ctxT(t), ln.Addr().String(), xmppclient.WithTimeout(200*time.Millisecond))
	if !errors.Is(err, xmppclient.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

func TestRegistration(t *testing.T) {
	for _, dataForm := range []bool{false, true} {
		name := "legacy"
		var opts []fakexmpp.Option
		if dataForm {
			name = "data form"
			opts = append(opts, fakexmpp.WithDataFormRegistration())
		}
		t.Run(name, func(t *testing.T) {
			s := fakexmpp.Start(t, opts...)
			c, err := xmppclient.Dial(ctxT(t), s.Addr(), xmppclient.WithRootCAs(s.CertPool()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if !c.Features().Register {
				t.Error("register stream feature not seen")
			}
			rf, err := c.RegistrationForm(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if dataForm {
				if rf.Form == nil {
					t.Fatal("no data form parsed")
				}
				var vars []string
				required := map[string]bool{}
				for _, f := range rf.FormFields {
					vars = append(vars, f.Var)
					required[f.Var] = f.Required
				}
				if strings.Join(vars, ",") != "FORM_TYPE,username,password,email" || !required["password"] || required["email"] {
					t.Errorf("form fields = %v required=%v", vars, required)
				}
				err = c.RegisterForm(ctxT(t), map[string]string{"username": "dave", "password": "pw-dave"})
			} else {
				if strings.Join(rf.Fields, ",") != "username,password,email" || rf.Instructions == "" {
					t.Errorf("legacy form = %+v", rf)
				}
				err = c.Register(ctxT(t), "dave", "pw-dave", map[string]string{"email": "d@example.org"})
			}
			if err != nil {
				t.Fatalf("register: %v", err)
			}
			if !s.CheckPassword("dave", "pw-dave") {
				t.Fatal("server has no account dave with that password")
			}
			// Same stream: authenticate as the new account.
			if err := c.Login(ctxT(t), "dave", "pw-dave"); err != nil {
				t.Fatalf("login after register: %v", err)
			}
		})
	}
	t.Run("conflict", func(t *testing.T) {
		s := fakexmpp.Start(t)
		s.AddUser("erin", "x")
		c, err := xmppclient.Dial(ctxT(t), s.Addr(), xmppclient.WithRootCAs(s.CertPool()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Abort()
		err = c.Register(ctxT(t), "erin", "y", nil)
		if !errors.Is(err, stanza.Error{Condition: stanza.Conflict}) {
			t.Fatalf("err = %v, want conflict", err)
		}
		var se *xmppclient.StanzaError
		if !errors.As(err, &se) || se.Type != stanza.Cancel {
			t.Fatalf("err = %#v", err)
		}
	})
}

func TestChangePasswordAndUnregister(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("frank", "old")
	c := connect(t, s, "frank", "old")
	if err := c.ChangePassword(ctxT(t), "new"); err != nil {
		t.Fatal(err)
	}
	if !s.CheckPassword("frank", "new") {
		t.Fatal("password not changed on the server")
	}
	c2 := connect(t, s, "frank", "new")
	if err := c2.Unregister(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if s.HasUser("frank") {
		t.Fatal("account still exists")
	}
	// The fake closes the stream with a stream error after removal.
	_, err := c2.Recv(ctxT(t))
	if !errors.Is(err, xmppclient.StreamNotAuthorized) {
		t.Errorf("after removal Recv err = %v", err)
	}
	_, err = xmppclient.Connect(ctxT(t), s.Addr(), "frank", "new", xmppclient.WithRootCAs(s.CertPool()))
	if !errors.Is(err, xmppclient.SASLNotAuthorized) {
		t.Errorf("login to removed account: %v", err)
	}
}

func TestMessagesPresenceRoster(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("gina", "g")
	s.AddUser("hank", "h")
	g := connect(t, s, "gina", "g")
	h := connect(t, s, "hank", "h", xmppclient.WithResource("laptop"))
	if h.JID() != "hank@localhost/laptop" {
		t.Fatalf("resource not honoured: %s", h.JID())
	}
	ctx := ctxT(t)
	if err := g.SendPresence(ctx, "", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := h.SendPresence(ctx, "", "", ""); err != nil {
		t.Fatal(err)
	}

	// Subscription: gina subscribes to hank, hank approves.
	if err := g.SetRosterItem(ctx, xmppclient.RosterItem{JID: "hank@localhost", Name: "Hank", Groups: []string{"Friends"}}); err != nil {
		t.Fatal(err)
	}
	if err := g.Subscribe(ctx, "hank@localhost"); err != nil {
		t.Fatal(err)
	}
	req, err := h.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "presence" && s.Type == "subscribe" })
	if err != nil || req.From != "gina@localhost" {
		t.Fatalf("subscription request: %v %+v", err, req)
	}
	if err := h.ApproveSubscription(ctx, req.From); err != nil {
		t.Fatal(err)
	}
	// gina now sees hank's presence.
	p, err := g.RecvMatch(ctx, func(s xmppclient.Stanza) bool {
		return s.Kind() == "presence" && s.Type == "" && strings.HasPrefix(s.From, "hank@localhost/")
	})
	if err != nil {
		t.Fatalf("presence after approval: %v", err)
	}
	_ = p
	items, err := g.Roster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].JID != "hank@localhost" || items[0].Subscription != "to" || items[0].Name != "Hank" || len(items[0].Groups) != 1 {
		t.Errorf("roster = %+v", items)
	}
	// Roster pushes are visible to Recv.
	if _, err := g.RecvMatch(ctx, func(s xmppclient.Stanza) bool {
		return s.Kind() == "iq" && s.Type == "set" && strings.Contains(s.Raw, "jabber:iq:roster")
	}); err != nil {
		t.Errorf("roster push: %v", err)
	}

	// Messages both ways, including characters that need escaping.
	body := `<hello & "bye">`
	if _, err := g.SendMessage(ctx, "hank@localhost", body); err != nil {
		t.Fatal(err)
	}
	m, err := h.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
	if err != nil {
		t.Fatal(err)
	}
	if m.Body() != body || !strings.HasPrefix(m.From, "gina@localhost/") {
		t.Errorf("message = %+v body %q", m, m.Body())
	}

	if err := g.RemoveRosterItem(ctx, "hank@localhost"); err != nil {
		t.Fatal(err)
	}
	if items, _ := g.Roster(ctx); len(items) != 0 {
		t.Errorf("roster after remove = %+v", items)
	}
}

func TestOfflineDelivery(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("ivy", "i")
	s.AddUser("jack", "j")
	i := connect(t, s, "ivy", "i")
	ctx := ctxT(t)
	if _, err := i.SendMessage(ctx, "jack@localhost", "while you were out"); err != nil {
		t.Fatal(err)
	}
	if _, err := i.Ping(ctx, ""); err != nil { // the message has been routed when the ping returns
		t.Fatal(err)
	}
	if n := s.OfflineCount("jack"); n != 1 {
		t.Fatalf("offline count = %d", n)
	}
	j := connect(t, s, "jack", "j")
	if err := j.SendPresence(ctx, "", "", ""); err != nil {
		t.Fatal(err)
	}
	m, err := j.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
	if err != nil || m.Body() != "while you were out" {
		t.Fatalf("offline message: %v %q", err, m.Body())
	}
}

func TestQueries(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("kate", "k")
	s.AddUser("liam", "l")
	k := connect(t, s, "kate", "k")
	ctx := ctxT(t)

	info, err := k.DiscoInfo(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !info.HasFeature(ns.Ping) || info.HasFeature(ns.MAM) || len(info.Identities) != 1 || info.Identities[0].Category != "server" {
		t.Errorf("disco#info = %+v", info)
	}
	items, err := k.DiscoItems(ctx, "", "")
	if err != nil || len(items) != 1 || items[0].JID != "upload.localhost" {
		t.Fatalf("disco#items = %+v, %v", items, err)
	}
	slot, err := k.RequestUploadSlot(ctx, items[0].JID, "a b.txt", 12, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(slot.PutURL, "https://upload.localhost/") || slot.GetURL != slot.PutURL || slot.PutHeaders["Authorization"] == "" {
		t.Errorf("slot = %+v", slot)
	}

	if err := k.SetVCard(ctx, xmppclient.VCard{FN: "Kate K", Nickname: "kk", Email: "k@example.org", Note: "n&b"}); err != nil {
		t.Fatal(err)
	}
	vc, err := k.GetVCard(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if vc.FN != "Kate K" || vc.Nickname != "kk" || vc.Email != "k@example.org" || vc.Note != "n&b" {
		t.Errorf("vcard = %+v", vc)
	}
	l := connect(t, s, "liam", "l")
	if vc2, err := l.GetVCard(ctx, "kate@localhost"); err != nil || vc2.FN != "Kate K" {
		t.Errorf("other's vcard = %+v, %v", vc2, err)
	}

	if la, err := k.LastActivity(ctx, "localhost"); err != nil || la.Seconds < 0 {
		t.Errorf("server last activity = %+v, %v", la, err)
	}
	if _, err := k.LastActivity(ctx, "nobody@localhost"); !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		t.Errorf("last activity of unknown user: %v", err)
	}
	_, err = k.QueryArchive(ctx, "")
	if !errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) {
		t.Errorf("mam on a server without mam: %v", err)
	}
	var se *xmppclient.StanzaError
	if !errors.As(err, &se) || !strings.Contains(se.Raw, "service-unavailable") {
		t.Errorf("StanzaError raw = %+v", se)
	}
}

func TestRecvTimeoutKeepsSession(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("mia", "m")
	s.AddUser("noah", "n")
	m := connect(t, s, "mia", "m")
	n := connect(t, s, "noah", "n")
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := m.Recv(short); !errors.Is(err, xmppclient.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if _, err := n.SendMessage(ctxT(t), m.JID(), "after the timeout"); err != nil {
		t.Fatal(err)
	}
	got, err := m.RecvMatch(ctxT(t), func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
	if err != nil || got.Body() != "after the timeout" {
		t.Fatalf("after timeout: %v %q", err, got.Body())
	}
}

func TestLocalAddrAndClose(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("olga", "o")
	src := netip.MustParseAddr("127.0.0.7")
	c, err := xmppclient.Connect(ctxT(t), s.Addr(), "olga", "o", xmppclient.WithRootCAs(s.CertPool()), xmppclient.WithLocalAddr(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.7" {
		t.Errorf("local address = %s", got)
	}
	if _, err := c.Ping(ctxT(t), ""); err != nil {
		t.Fatal(err)
	}
	if s.Sessions() != 1 {
		t.Fatalf("sessions = %d", s.Sessions())
	}
	if err := c.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Close waited for the server's </stream:stream>, so the session is gone.
	deadline := time.Now().Add(5 * time.Second)
	for s.Sessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Sessions() != 0 {
		t.Errorf("server still has %d sessions", s.Sessions())
	}
	if _, err := c.Ping(ctxT(t), ""); !errors.Is(err, xmppclient.ErrClosed) {
		t.Errorf("ping after close: %v", err)
	}
}

func TestHijack(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("pat", "p")
	s.AddUser("quinn", "q")
	q := connect(t, s, "quinn", "q")
	c, err := xmppclient.Connect(ctxT(t), s.Addr(), "pat", "p", xmppclient.WithRootCAs(s.CertPool()))
	if err != nil {
		t.Fatal(err)
	}
	conn, br, err := c.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := c.Hijack(); !errors.Is(err, xmppclient.ErrState) {
		t.Errorf("second hijack: %v", err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("<message to='" + q.JID() + "'><body>raw</body></message>")); err != nil {
		t.Fatal(err)
	}
	m, err := q.RecvMatch(ctxT(t), func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
	if err != nil || m.Body() != "raw" {
		t.Fatalf("%v %q", err, m.Body())
	}
	if _, err := q.SendMessage(ctxT(t), c.JID(), "back"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := br.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "<body>back</body>") {
		t.Fatalf("read on hijacked conn: %v %q", err, buf[:n])
	}
}

func TestTranscriptRedactsSecrets(t *testing.T) {
	s := fakexmpp.Start(t, fakexmpp.WithDataFormRegistration())
	const (
		regPass   = "S3cret<&>'\"pw"
		newPass   = "an0ther-Secret"
		plainPass = "plain-Pass-77"
	)
	var tr syncbuf.Buffer
	ctx := ctxT(t)
	opts := []xmppclient.Option{xmppclient.WithRootCAs(s.CertPool()), xmppclient.WithTranscript(&tr)}

	// Registration by data form and by legacy fields, SCRAM login, password
	// change, PLAIN login.
	c, err := xmppclient.Dial(ctx, s.Addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterForm(ctx, map[string]string{"username": "rita", "password": regPass}); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, "rita", regPass); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangePassword(ctx, newPass); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	c, err = xmppclient.Dial(ctx, s.Addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, "sam", plainPass, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = xmppclient.Connect(ctx, s.Addr(), "sam", plainPass, append(opts, xmppclient.WithMechanisms("PLAIN"))...)
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	c, err = xmppclient.Connect(ctx, s.Addr(), "rita", newPass, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)

	out := tr.String()
	// Positive controls: the transcript really holds the exchanges.
	for _, want := range []string{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>[redacted]</auth>",
		"mechanism='PLAIN'>[redacted]</auth>", "<challenge", "<success", "<username>sam</username>",
		"<password>[redacted]</password>", "var='password'><value>[redacted]</value>", "<bind", "</stream:stream>"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	// No password in any form; no SASL payload.
	for _, p := range []string{regPass, newPass, plainPass} {
		forms := []string{p, xmppclient.Escape(p), base64.StdEncoding.EncodeToString([]byte(p))}
		forms = append(forms, base64.StdEncoding.EncodeToString([]byte("\x00sam\x00"+p)))
		for _, f := range forms {
			if strings.Contains(out, f) {
				t.Errorf("transcript contains secret form %q", f)
			}
		}
	}
	for _, l := range strings.Split(out, "\n") {
		for _, tag := range []string{"<auth ", "<response", "<challenge", "<success"} {
			if strings.Contains(l, tag) && !strings.Contains(l, "[redacted]") && !strings.Contains(l, "/>") {
				t.Errorf("SASL element with payload: %s", l)
			}
		}
	}
	// Positive control of the scan itself: the same checks find a secret
	// in an unredacted copy.
	if raw := "<password>" + newPass + "</password>"; !strings.Contains(raw, newPass) {
		t.Fatal("scan cannot find a secret")
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		in, want string
		secrets  []string
	}{
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>[redacted]</auth>", nil},
		{"<challenge xmlns='x'>cj1hYmM=</challenge>", "<challenge xmlns='x'>[redacted]</challenge>", nil},
		{"<success xmlns='x'/>", "<success xmlns='x'/>", nil},
		{"<iq><query><username>u</username><password>p&amp;w</password></query></iq>", "<iq><query><username>u</username><password>[redacted]</password></query></iq>", nil},
		{"<field var=\"password\" type='text-private'><value>x</value></field>", "<field var=\"password\" type='text-private'><value>[redacted]</value></field>", nil},
		{"<message><body>my pw is hunter2</body></message>", "<message><body>my pw is [redacted]</body></message>", []string{"hunter2"}},
		{"<message><body>a&lt;b</body></message>", "<message><body>[redacted]</body></message>", []string{"a<b"}},
		{"<message><body>nothing secret</body></message>", "<message><body>nothing secret</body></message>", []string{"hunter2"}},
	}
	for _, tt := range tests {
		if got := string(xmppclient.Redact([]byte(tt.in), tt.secrets)); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
