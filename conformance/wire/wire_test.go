package wire_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/internal/fakeserver"
	"github.com/xmppcheck/xmppcheck/conformance/wire"
)

func TestStartTLSVersions(t *testing.T) {
	tests := []struct {
		name     string
		min, max uint16
		try      uint16
		wantOK   bool
	}{
		{"1.0 offered to a 1.0 server (positive control)", tls.VersionTLS10, tls.VersionTLS13, tls.VersionTLS10, true},
		{"1.1 offered to a 1.0 server", tls.VersionTLS10, tls.VersionTLS13, tls.VersionTLS11, true},
		{"1.0 refused by a 1.2 floor", tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS10, false},
		{"1.1 refused by a 1.2 floor", tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS11, false},
		{"1.2 accepted", tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS12, true},
		{"1.3 accepted", tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS13, true},
		{"1.3 refused by a 1.2-only server", tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS13, false},
	}
	for _, tt := range tests {
		for _, direct := range []bool{false, true} {
			name := tt.name
			if direct {
				name += " (direct TLS)"
			}
			t.Run(name, func(t *testing.T) {
				opts := []fakeserver.Option{fakeserver.WithTLSVersions(tt.min, tt.max)}
				if direct {
					opts = append(opts, fakeserver.WithDirectTLS())
				}
				srv := fakeserver.Start(t, opts...)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				tr := wire.NewTranscript(0)
				var c *wire.Conn
				var err error
				if direct {
					c, err = wire.Dial(ctx, srv.Addr(), "localhost", wire.WithTranscript(tr), wire.WithDirectTLS(wire.TLSConfig("localhost", tt.try)))
				} else {
					c, err = wire.Dial(ctx, srv.Addr(), "localhost", wire.WithTranscript(tr))
					if err != nil {
						t.Fatal(err)
					}
					err = c.StartTLS(ctx, wire.TLSConfig("localhost", tt.try))
				}
				if gotOK := err == nil; gotOK != tt.wantOK {
					t.Fatalf("handshake ok=%v, want %v: %v\n%s", gotOK, tt.wantOK, err, tr)
				}
				if err != nil {
					var te *wire.TLSError
					if !errors.As(err, &te) {
						t.Fatalf("error %v is not a TLSError", err)
					}
					return
				}
				if c.TLSState.Version != tt.try {
					t.Fatalf("negotiated %x, want %x", c.TLSState.Version, tt.try)
				}
				c.Close()
			})
		}
	}
}

func TestAuthAndRedaction(t *testing.T) {
	const pw = "s3cr3t-Pa55word"
	srv := fakeserver.Start(t, fakeserver.WithUser("alice", pw))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := wire.NewTranscript(0)
	c, err := wire.Dial(ctx, srv.Addr(), "localhost", wire.WithTranscript(tr))
	if err != nil {
		t.Fatal(err)
	}
	// Before TLS the compliant server refuses.
	err = c.AuthPlain(ctx, "alice", pw)
	var f *wire.SASLFailure
	if !errors.As(err, &f) || f.Condition != "encryption-required" {
		t.Fatalf("plaintext auth: %v", err)
	}
	if err := c.StartTLS(ctx, wire.TLSConfig("localhost", tls.VersionTLS13)); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthPlain(ctx, "alice", "wrong"); !errors.Is(err, wire.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := c.AuthPlain(ctx, "alice", pw); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Bind(ctx, "probe"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if s := tr.String(); strings.Contains(s, pw) || !strings.Contains(s, "[redacted]") {
		t.Fatalf("transcript leaks or lacks redaction:\n%s", s)
	}
}

func TestHostileServers(t *testing.T) {
	tests := []struct {
		name string
		mode fakeserver.Mode
		want error
	}{
		{"silent", fakeserver.Silent, wire.ErrNoResponse},
		{"garbage", fakeserver.Garbage, wire.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeserver.Start(t, fakeserver.WithMode(tt.mode))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := wire.Dial(ctx, srv.Addr(), "localhost", wire.WithTimeout(300*time.Millisecond))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
		})
	}
	t.Run("drop during TLS", func(t *testing.T) {
		srv := fakeserver.Start(t, fakeserver.WithMode(fakeserver.DropTLS))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := wire.Dial(ctx, srv.Addr(), "localhost")
		if err != nil {
			t.Fatal(err)
		}
		var te *wire.TLSError
		if err := c.StartTLS(ctx, wire.TLSConfig("localhost", tls.VersionTLS12)); !errors.As(err, &te) {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("cancelled context unblocks a silent read", func(t *testing.T) {
		srv := fakeserver.Start(t, fakeserver.WithMode(fakeserver.Silent))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := wire.Dial(ctx, srv.Addr(), "localhost", wire.WithTimeout(time.Hour))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err=%v", err)
		}
	})
}

// TestTranscriptRedaction: a registered secret is gone in every form a
// stream may carry it, and so are SASL payloads and password fields.
func TestTranscriptRedaction(t *testing.T) {
	const pw = "pa<ss>&'w0rd"
	tr := wire.NewTranscript(0)
	tr.AddSecret(pw)
	for _, line := range []string{
		"<message><body>" + pw + "</body></message>",
		"<message><body>pa&lt;ss&gt;&amp;&apos;w0rd</body></message>",
		"<note>" + base64.StdEncoding.EncodeToString([]byte(pw)) + "</note>",
		"<note>" + hex.EncodeToString([]byte(pw)) + "</note>",
		"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAG90aGVy</auth>",
		"<query xmlns='jabber:iq:register'><username>a</username><password>other-pw</password></query>",
		"<x xmlns='jabber:x:data'><field var='password'><value>other-pw</value></field></x>",
	} {
		tr.Record("C", line)
	}
	tr.Notef("kept: %s", "visible-marker")
	s := tr.String()
	for _, leak := range []string{"w0rd", "AGFsaWNlAG90aGVy", "other-pw", hex.EncodeToString([]byte(pw))} {
		if strings.Contains(s, leak) {
			t.Errorf("transcript holds %q:\n%s", leak, s)
		}
	}
	if n := strings.Count(s, "[redacted]"); n != 7 || !strings.Contains(s, "visible-marker") {
		t.Errorf("%d redactions, want 7, and the note kept:\n%s", n, s)
	}

	small := wire.NewTranscript(64)
	for range 10 {
		small.Record("S", "<presence/>")
	}
	if s := small.String(); len(s) > 64+len("[transcript truncated]\n") || strings.Count(s, "[transcript truncated]") != 1 {
		t.Errorf("limited transcript:\n%s", s)
	}
}

// TestAfterTLS (issue 9, item 10): a stream error on the stream reopened
// after a completed handshake is an AfterTLSError carrying the negotiated
// version, not a TLSError; a connection closed after the ClientHello is a
// TLSError with no byte from the server.
func TestAfterTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := fakeserver.Start(t, fakeserver.WithS2SStreamErrorAfterTLS())
	c, err := wire.Dial(ctx, srv.Addr(), "localhost", wire.WithServerStream("xmppcheck.invalid"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.StartTLS(ctx, wire.TLSConfig("localhost", tls.VersionTLS12))
	var ae *wire.AfterTLSError
	var te *wire.TLSError
	if !errors.As(err, &ae) || errors.As(err, &te) || ae.State.Version != tls.VersionTLS12 || !errors.Is(err, wire.ErrStreamError) {
		t.Fatalf("err=%v (%T)", err, err)
	}

	old := fakeserver.Start(t, fakeserver.WithOldHello(fakeserver.OldHelloClose))
	c, err = wire.Dial(ctx, old.Addr(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	err = c.StartTLS(ctx, wire.TLSConfig("localhost", tls.VersionTLS10))
	if !errors.As(err, &te) || te.ServerBytes != 0 {
		t.Fatalf("err=%v (%T)", err, err)
	}
	alert := fakeserver.Start(t)
	c, err = wire.Dial(ctx, alert.Addr(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	err = c.StartTLS(ctx, wire.TLSConfig("localhost", tls.VersionTLS10))
	if !errors.As(err, &te) || te.ServerBytes == 0 {
		t.Fatalf("an alert is bytes from the server: err=%v, %d bytes", err, te.ServerBytes)
	}
}
