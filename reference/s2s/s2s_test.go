package s2s

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/testcert"
	"github.com/xmppcheck/xmppcheck/spec/policies"
	"mellium.im/xmpp/stanza"
)

// pair starts a.test and b.test federating on loopback.
func pair(t *testing.T, ca *testcert.CA, optsA, optsB []Option) (*node, *node) {
	t.Helper()
	lnA, lnB := listen(t), listen(t)
	certA, certB := issue(t, ca, "a.test"), issue(t, ca, "b.test")
	a := startNode(t, "a.test", lnA, certA, append([]Option{WithHost("b.test", lnB.Addr().String())}, optsA...)...)
	b := startNode(t, "b.test", lnB, certB, append([]Option{WithHost("a.test", lnA.Addr().String())}, optsB...)...)
	return a, b
}

func TestFederation(t *testing.T) {
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	for _, tc := range []struct {
		name       string
		ca         *testcert.CA
		opts       []Option
		wantMethod string
	}{
		{"dialback with self-signed certificates", nil, []Option{WithPolicy(pol)}, "method=dialback"},
		{"SASL EXTERNAL with verifiable certificates", ca, []Option{WithPolicy(pol), WithRootCAs(ca.Pool)}, "method=\"SASL EXTERNAL\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, tc.ca, tc.opts, tc.opts)
			ctx := context.Background()
			exchanges := []struct {
				from, to *node
				raw      string
			}{
				{a, b, `<message xmlns='jabber:client' from='alice@a.test/phone' to='bob@b.test' type='chat' id='m1'><body>hello &amp; welcome</body></message>`},
				{b, a, `<message from='bob@b.test/desk' to='alice@a.test' type='chat' id='m2'><body>hi back</body></message>`},
				{a, b, `<presence from='alice@a.test/phone' to='bob@b.test' type='subscribe' id='p1'/>`},
				{b, a, `<presence from='bob@b.test/desk' to='alice@a.test'><show>away</show></presence>`},
			}
			for _, ex := range exchanges {
				sent := mustStanza(t, ex.raw)
				if err := ex.from.srv.Send(ctx, sent); err != nil {
					t.Fatal(err)
				}
				got := ex.to.waitStanza(t)
				if got.Name != sent.Name || !got.From.Equal(sent.From) || !got.To.Equal(sent.To) || got.ID != sent.ID || got.Type != sent.Type {
					t.Fatalf("sent %s, delivered %s", sent.Raw, got.Raw)
				}
				if string(got.Raw) != string(sent.Raw) {
					t.Fatalf("payload changed: sent %s, delivered %s", sent.Raw, got.Raw)
				}
			}
			for _, n := range []*node{a, b} {
				if !strings.Contains(n.logs.String(), tc.wantMethod) {
					t.Errorf("%s: no stream authenticated with %s", n.srv.Domain(), tc.wantMethod)
				}
			}
		})
	}
}

func TestQueuedDuringSetupNeitherLostNorDuplicated(t *testing.T) {
	a, b := pair(t, nil, nil, nil)
	ctx := context.Background()
	const n = 300
	// All sent before the stream can possibly be up: they wait in the queue.
	for i := range n {
		st := mustStanza(t, fmt.Sprintf(`<message from='alice@a.test' to='bob@b.test' id='%d'><body>%d</body></message>`, i, i))
		if err := a.srv.Send(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		got := b.waitStanza(t)
		if got.ID != strconv.Itoa(i) {
			t.Fatalf("stanza %d: got id %s (lost, duplicated or reordered)", i, got.ID)
		}
	}
	// A marker sent last arrives next: nothing was duplicated after it.
	a.srv.Send(ctx, mustStanza(t, `<message from='alice@a.test' to='bob@b.test' id='end'/>`))
	if got := b.waitStanza(t); got.ID != "end" {
		t.Fatalf("after %d stanzas got extra %s", n, got.Raw)
	}
	select {
	case s := <-a.got:
		t.Fatalf("sender got a bounce: %s", s.Raw)
	default:
	}
}

func TestUnreachableBounces(t *testing.T) {
	closed := listen(t)
	closedAddr := closed.Addr().String()
	closed.Close()
	// A server that accepts and never speaks.
	silent := listen(t)
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	// A server that offers no STARTTLS.
	plain := listen(t)
	t.Cleanup(func() { plain.Close() })
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sr := newStreamReader(c, DefaultMaxElement)
				sr.header()
				c.Write([]byte(streamHeader("plain.test", "a.test", "x1") + "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"))
				sr.next()
			}()
		}
	}()
	// A peer stuck on TLS 1.1, below the policy's floor.
	lnOld := listen(t)
	startNode(t, "old.test", lnOld, issue(t, nil, "old.test"), WithMinTLSVersion(tls.VersionTLS10), withMaxTLSVersion(tls.VersionTLS11))

	pol, _ := policies.LoadDefault()
	a := startNode(t, "a.test", nil, issue(t, nil, "a.test"), WithPolicy(pol), WithSetupTimeout(2*time.Second),
		WithHost("closed.test", closedAddr), WithHost("silent.test", silent.Addr().String()),
		WithHost("plain.test", plain.Addr().String()), WithHost("old.test", lnOld.Addr().String()))
	ctx := context.Background()
	for _, tc := range []struct {
		domain string
		want   stanza.Condition
	}{
		{"nowhere.test", stanza.RemoteServerNotFound},
		{"closed.test", stanza.RemoteServerNotFound},
		{"plain.test", stanza.RemoteServerNotFound},
		{"old.test", stanza.RemoteServerNotFound},
		{"silent.test", stanza.RemoteServerTimeout},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			// An error stanza is never bounced (RFC 6120 §8.3.1) …
			a.srv.Send(ctx, mustStanza(t, `<message from='alice@a.test' to='x@`+tc.domain+`' type='error' id='e1'/>`))
			// … a message is.
			a.srv.Send(ctx, mustStanza(t, `<message from='alice@a.test/r' to='bob@`+tc.domain+`' id='m1' type='chat'><body>secret</body></message>`))
			got := a.waitStanza(t)
			if got.ID != "m1" || got.Type != "error" || got.To.String() != "alice@a.test/r" || got.From.String() != "bob@"+tc.domain {
				t.Fatalf("bounce %s", got.Raw)
			}
			if c := ErrorCondition(got); c != tc.want {
				t.Fatalf("condition %q, want %q: %s", c, tc.want, got.Raw)
			}
			if strings.Contains(string(got.Raw), "secret") {
				t.Errorf("bounce echoes the body: %s", got.Raw)
			}
			select {
			case s := <-a.got:
				t.Fatalf("extra stanza %s", s.Raw)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

func TestInboundTLSFloor(t *testing.T) {
	pol, _ := policies.LoadDefault()
	ln := listen(t)
	startNode(t, "b.test", ln, issue(t, nil, "b.test"), WithPolicy(pol))
	for _, tc := range []struct {
		name    string
		max     uint16
		wantErr bool
	}{
		{"TLS 1.0", tls.VersionTLS10, true},
		{"TLS 1.1", tls.VersionTLS11, true},
		{"TLS 1.2", tls.VersionTLS12, false},
		{"TLS 1.3", tls.VersionTLS13, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dialRaw(t, ln.Addr().String())
			_, feats := p.open("x.test", "b.test")
			if tl := feats.child(ns.TLS, "starttls"); tl == nil || tl.child(ns.TLS, "required") == nil {
				t.Fatalf("features %+v: STARTTLS not required", feats)
			}
			err := p.starttls(tc.max)
			if (err != nil) != tc.wantErr {
				t.Fatalf("handshake error %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				_, feats := p.open("x.test", "b.test")
				if feats.child(ns.DialbackFeature, "dialback") == nil {
					t.Fatalf("no dialback offered after TLS: %+v", feats)
				}
			}
		})
	}
}

func TestInboundRequiresTLS(t *testing.T) {
	ln := listen(t)
	b := startNode(t, "b.test", ln, issue(t, nil, "b.test"))
	for _, first := range []string{
		`<db:result from='x.test' to='b.test'>abc</db:result>`,
		`<message from='x@x.test' to='bob@b.test'><body>plain</body></message>`,
	} {
		p := dialRaw(t, ln.Addr().String())
		p.open("x.test", "b.test")
		p.send(first)
		el := p.next()
		if el.XMLName.Local != "error" || conditionOf(el) != "policy-violation" {
			t.Fatalf("after %s: got %+v", first, el)
		}
	}
	select {
	case s := <-b.got:
		t.Fatalf("delivered without TLS: %s", s.Raw)
	default:
	}
}

func TestDialbackRejectsForgedKey(t *testing.T) {
	// a.test is real (the authoritative server); a raw peer claims to be
	// a.test towards b.test with a key a.test never made.
	a, b := pair(t, nil, nil, nil)
	_ = a
	p := dialRaw(t, b.addr)
	p.open("a.test", "b.test")
	if err := p.starttls(tls.VersionTLS13); err != nil {
		t.Fatal(err)
	}
	p.open("a.test", "b.test")
	p.send(`<db:result from='a.test' to='b.test'>00ff00ff</db:result>`)
	el := p.next()
	if el.XMLName.Local != "result" || el.attr("type") != "invalid" {
		t.Fatalf("forged key: got %+v", el)
	}
	// Not authenticated: a stanza claiming a.test is refused, not delivered.
	p.send(`<message from='alice@a.test' to='bob@b.test'><body>forged</body></message>`)
	el = p.next()
	if el.XMLName.Local != "error" || conditionOf(el) != "invalid-from" {
		t.Fatalf("stanza on unauthenticated stream: got %+v", el)
	}
	select {
	case s := <-b.got:
		t.Fatalf("delivered: %s", s.Raw)
	default:
	}
	// Positive control: the real a.test gets through to b.test.
	a.srv.Send(context.Background(), mustStanza(t, `<message from='alice@a.test' to='bob@b.test' id='real'/>`))
	if got := b.waitStanza(t); got.ID != "real" {
		t.Fatalf("got %s", got.Raw)
	}
}

func TestSpoofedSenderDomainRefused(t *testing.T) {
	// A peer authenticated as b.test (SASL EXTERNAL with a certificate
	// a.test trusts) sends one stanza from b.test, which is delivered, then
	// one from c.test, which ends the stream and is not delivered.
	ca := newTestCA(t)
	lnA := listen(t)
	a := startNode(t, "a.test", lnA, issue(t, ca, "a.test"), WithRootCAs(ca.Pool))
	p := dialRaw(t, lnA.Addr().String())
	p.open("b.test", "a.test")
	if err := p.starttlsWith(tls.VersionTLS13, issue(t, ca, "b.test")); err != nil {
		t.Fatal(err)
	}
	if _, feats := p.open("b.test", "a.test"); !hasMechanism(feats, "EXTERNAL") {
		t.Fatalf("no SASL EXTERNAL offered for a verifiable certificate: %+v", feats)
	}
	p.send("<auth xmlns='" + ns.SASL + "' mechanism='EXTERNAL'>=</auth>")
	if el := p.next(); el.XMLName.Local != "success" {
		t.Fatalf("EXTERNAL: %+v", el)
	}
	p.open("b.test", "a.test")
	p.send(`<message from='bob@b.test' to='alice@a.test' id='ok'><body>hi</body></message>`)
	if got := a.waitStanza(t); got.ID != "ok" {
		t.Fatalf("got %s", got.Raw)
	}
	p.send(`<message from='carol@c.test' to='alice@a.test' id='spoof'><body>forged</body></message>`)
	if el := p.next(); el.XMLName.Local != "error" || conditionOf(el) != "invalid-from" {
		t.Fatalf("spoofed sender: got %+v", el)
	}
	select {
	case s := <-a.got:
		t.Fatalf("delivered: %s", s.Raw)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestSendRefusesNonLocalSender(t *testing.T) {
	a := startNode(t, "a.test", nil, issue(t, nil, "a.test"))
	err := a.srv.Send(context.Background(), mustStanza(t, `<message from='eve@evil.test' to='bob@b.test'/>`))
	if err == nil {
		t.Fatal("relayed a stanza from a foreign domain")
	}
}

func TestParseHost(t *testing.T) {
	for _, tc := range []struct {
		in, domain, addr string
		ok               bool
	}{
		{"example.org=127.0.0.1:5269", "example.org", "127.0.0.1:5269", true},
		{"Example.ORG=[::1]:5270", "example.org", "[::1]:5270", true},
		{"example.org", "", "", false},
		{"=127.0.0.1:5269", "", "", false},
		{"example.org=127.0.0.1", "", "", false},
		{"a@b=127.0.0.1:1", "", "", false},
	} {
		d, a, err := ParseHost(tc.in)
		if (err == nil) != tc.ok || d != tc.domain || a != tc.addr {
			t.Errorf("ParseHost(%q) = %q, %q, %v", tc.in, d, a, err)
		}
	}
}

func TestResolveSRV(t *testing.T) {
	a := startNode(t, "a.test", nil, issue(t, nil, "a.test"), WithResolver(fakeResolver{
		srv:  map[string][]*net.SRV{"srv.test": {{Target: "xmpp1.srv.test.", Port: 5999}, {Target: "xmpp2.srv.test.", Port: 5269}}, "none.test": {{Target: "."}}},
		host: map[string][]string{"a-only.test": {"127.0.0.9"}},
	}))
	a.srv.cfg.staticOnly = false
	for _, tc := range []struct {
		domain string
		want   string
	}{
		{"srv.test", "xmpp1.srv.test:5999 xmpp2.srv.test:5269"},
		{"a-only.test", "127.0.0.9:5269"},
		{"none.test", ""},
		{"nothing.test", ""},
	} {
		addrs, err := a.srv.resolve(context.Background(), tc.domain)
		if got := strings.Join(addrs, " "); got != tc.want || (tc.want == "" && err == nil) {
			t.Errorf("%s: %q, %v; want %q", tc.domain, got, err, tc.want)
		}
	}
}

type fakeResolver struct {
	srv  map[string][]*net.SRV
	host map[string][]string
}

func (f fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if s, ok := f.srv[name]; ok {
		return "", s, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if h, ok := f.host[host]; ok {
		return h, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestSubdomainService: a server's components live on subdomains
// (upload.b.test); a remote server may address them, and their answers
// travel on a stream authenticated for the subdomain itself.
func TestSubdomainService(t *testing.T) {
	lnA, lnB := listen(t), listen(t)
	a := startNode(t, "a.test", lnA, issue(t, nil, "a.test"), WithHost("b.test", lnB.Addr().String()), WithHost("upload.b.test", lnB.Addr().String()))
	b := startNode(t, "b.test", lnB, issue(t, nil, "b.test"), WithHost("a.test", lnA.Addr().String()))
	ctx := context.Background()
	if err := a.srv.Send(ctx, mustStanza(t, `<iq from='alice@a.test/r' to='upload.b.test' type='get' id='q1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)); err != nil {
		t.Fatal(err)
	}
	got := b.waitStanza(t)
	if got.ID != "q1" || got.To.String() != "upload.b.test" {
		t.Fatalf("b.test got %s", got.Raw)
	}
	if err := b.srv.Send(ctx, mustStanza(t, `<iq from='upload.b.test' to='alice@a.test/r' type='result' id='q1'/>`)); err != nil {
		t.Fatal(err)
	}
	got = a.waitStanza(t)
	if got.ID != "q1" || got.From.String() != "upload.b.test" || got.Type != "result" {
		t.Fatalf("a.test got %s", got.Raw)
	}
	if !strings.Contains(b.logs.String(), "local=upload.b.test") {
		t.Error("the answer did not travel on a stream of upload.b.test's own")
	}
}

func TestInboundLimits(t *testing.T) {
	ln := listen(t)
	startNode(t, "b.test", ln, issue(t, nil, "b.test"), WithMaxInbound(1), WithIOTimeout(2*time.Second))
	// The first stream is served (positive control) …
	p1 := dialRaw(t, ln.Addr().String())
	if _, feats := p1.open("x.test", "b.test"); feats.child(ns.TLS, "starttls") == nil {
		t.Fatalf("first stream: %+v", feats)
	}
	// … a second one while it is open is closed without a stream header.
	p2 := dialRaw(t, ln.Addr().String())
	p2.send(streamHeader("y.test", "b.test", ""))
	p2.sr = newStreamReader(p2.conn, DefaultMaxElement)
	if _, err := p2.sr.header(); err == nil {
		t.Fatal("a stream over the limit was served")
	}
	// An unauthenticated stream that falls silent is closed after the I/O
	// timeout with a stream error.
	if err := p1.starttls(tls.VersionTLS13); err != nil {
		t.Fatal(err)
	}
	p1.open("x.test", "b.test")
	el := p1.next()
	if el.XMLName.Local != "error" || conditionOf(el) != "connection-timeout" {
		t.Fatalf("silent unauthenticated stream: got %+v", el)
	}
}

func TestInboundRestrictedXML(t *testing.T) {
	ln := listen(t)
	b := startNode(t, "b.test", ln, issue(t, nil, "b.test"))
	for _, tc := range []struct{ name, send, want string }{
		{"comment", "<!-- hi -->", "restricted-xml"},
		{"processing instruction", "<?foo bar?>", "restricted-xml"},
		{"not well-formed", "<starttls xmlns='" + ns.TLS + "'></proceed>", "not-well-formed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dialRaw(t, ln.Addr().String())
			p.open("x.test", "b.test")
			p.send(tc.send)
			if el := p.next(); el.XMLName.Local != "error" || conditionOf(el) != tc.want {
				t.Fatalf("got %+v, want stream error %s", el, tc.want)
			}
		})
	}
	// Positive control: the same peer's well-formed STARTTLS proceeds.
	p := dialRaw(t, ln.Addr().String())
	p.open("x.test", "b.test")
	if err := p.starttls(tls.VersionTLS13); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-b.got:
		t.Fatalf("delivered %s", s.Raw)
	default:
	}
}
