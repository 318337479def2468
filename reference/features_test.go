package reference

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/control"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// TestDiscoAdvertisesExactlyWhatIsImplemented: mam.disabled,
// privacy.no-connection-times — no MAM or last-activity feature, and their
// queries are refused; every advertised feature answers.
func TestDiscoAdvertisesExactlyWhatIsImplemented(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	alice := login(t, srv.Server, "alice", "pa", "a")
	r := alice.iq("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	var features []string
	for _, f := range r.Child(ns.DiscoInfo, "query").Elements() {
		if f.Name.Local == "feature" {
			features = append(features, f.Get("var"))
		}
	}
	want := []string{ns.DiscoInfo, ns.DiscoItems, ns.Register, ns.Ping, ns.VCard}
	slices.Sort(want)
	if !slices.Equal(features, want) {
		t.Fatalf("features %v, want %v", features, want)
	}
	for _, tc := range []struct{ to, payload, cond string }{
		{"", "<query xmlns='urn:xmpp:mam:2'/>", "service-unavailable"},
		{"localhost", "<query xmlns='urn:xmpp:mam:2'/>", "service-unavailable"},
		{"bob@localhost", "<query xmlns='jabber:iq:last'/>", "service-unavailable"},
		{"localhost", "<query xmlns='jabber:iq:last'/>", "service-unavailable"},
		{"localhost", "<query xmlns='jabber:iq:version'/>", "service-unavailable"},
		{"nobody@localhost", "<vCard xmlns='vcard-temp'/>", "service-unavailable"},
		{"localhost", "<ping xmlns='urn:xmpp:ping'/>", ""},
		{"", "<ping xmlns='urn:xmpp:ping'/>", ""},
		{"localhost", "<query xmlns='http://jabber.org/protocol/disco#items'/>", ""},
		{"bob@localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>", ""},
		{"localhost", "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", ""},
	} {
		r := alice.iq("get", tc.to, tc.payload)
		if got := errorCondition(r); got != tc.cond {
			t.Errorf("%s to %q: condition %q, want %q (%s)", tc.payload, tc.to, got, tc.cond, r)
		}
	}
}

func TestVCard(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	alice := login(t, srv.Server, "alice", "pa", "a")
	bob := login(t, srv.Server, "bob", "pb", "b")
	if r := alice.iq("get", "", "<vCard xmlns='vcard-temp'/>"); r.Get("type") != "result" || r.Child(ns.VCard, "vCard") == nil {
		t.Fatalf("empty vCard: %s", r)
	}
	if r := alice.iq("set", "", "<vCard xmlns='vcard-temp'><FN>Alice &amp; Co</FN><NICKNAME>al</NICKNAME></vCard>"); r.Get("type") != "result" {
		t.Fatalf("set: %s", r)
	}
	r := bob.iq("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>")
	if v := r.Child(ns.VCard, "vCard"); v == nil || v.ChildText(ns.VCard, "FN") != "Alice & Co" {
		t.Fatalf("bob reads alice's vCard: %s", r)
	}
	if r := bob.iq("set", "alice@localhost", "<vCard xmlns='vcard-temp'><FN>pwned</FN></vCard>"); errorCondition(r) != "forbidden" {
		t.Fatalf("bob wrote alice's vCard: %s", r)
	}
	big := "<vCard xmlns='vcard-temp'><DESC>" + strings.Repeat("x", 70<<10) + "</DESC></vCard>"
	if r := alice.iq("set", "", big); errorCondition(r) != "not-acceptable" {
		t.Fatalf("oversized vCard: %s", r)
	}
}

// TestMessageDeliveryRules: RFC 6121 §8.5 for unknown accounts, missing
// resources and message types.
func TestMessageDeliveryRules(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	alice := login(t, srv.Server, "alice", "pa", "a")
	bob := login(t, srv.Server, "bob", "pb", "b")
	bob.send("<presence><priority>5</priority></presence>")
	bob2 := login(t, srv.Server, "bob", "pb", "b2")
	bob2.send("<presence><priority>1</priority></presence>")
	bob2.sync()
	bob.sync()
	// Unknown account: service-unavailable.
	alice.send("<message to='nobody@localhost' id='u1' type='chat'><body>x</body></message>")
	e := alice.expect("bounce", isMessage)
	if e.Get("type") != "error" || errorCondition(e) != "service-unavailable" || e.Get("id") != "u1" {
		t.Fatalf("to unknown account: %s", e)
	}
	// Bare JID: the highest priority resource only.
	alice.send("<message to='bob@localhost' type='chat'><body>to-bare</body></message>")
	if m := bob.expect("message", isMessage); m.ChildText(ns.Client, "body") != "to-bare" {
		t.Fatalf("bob/b got %s", m)
	}
	// Full JID of a missing resource: falls back to the bare JID for chat.
	alice.send("<message to='bob@localhost/gone' type='chat'><body>to-gone</body></message>")
	if m := bob.expect("message", isMessage); m.ChildText(ns.Client, "body") != "to-gone" {
		t.Fatalf("bob/b got %s", m)
	}
	// Headline to the bare JID: every non-negative resource.
	alice.send("<message to='bob@localhost' type='headline'><body>news</body></message>")
	bob.expect("headline", isMessage)
	bob2.expect("headline", isMessage)
	// Groupchat to a user: service-unavailable.
	alice.send("<message to='bob@localhost' type='groupchat' id='g'><body>x</body></message>")
	if e := alice.expect("bounce", isMessage); errorCondition(e) != "service-unavailable" {
		t.Fatalf("groupchat: %s", e)
	}
	// Other domains bounce without s2s.
	alice.send("<message to='someone@example.net' id='r'><body>x</body></message>")
	if e := alice.expect("bounce", isMessage); errorCondition(e) != "remote-server-not-found" {
		t.Fatalf("remote: %s", e)
	}
	// bob2 saw none of the chat messages.
	bob2.send("<message to='bob@localhost/b2'><body>fence</body></message>")
	for {
		m := bob2.expect("message", isMessage)
		if b := m.ChildText(ns.Client, "body"); b == "fence" {
			break
		} else if b != "news" {
			t.Fatalf("lower-priority resource got %q", b)
		}
	}
	// IQ to a full JID is routed; to a missing resource, service-unavailable.
	alice.send("<iq type='get' id='p1' to='bob@localhost/b2'><ping xmlns='urn:xmpp:ping'/></iq>")
	in := bob2.expect("iq", func(el *wire.Element) bool { return el.Name.Local == "iq" })
	if in.Get("from") != "alice@localhost/a" {
		t.Fatalf("routed iq: %s", in)
	}
	bob2.send("<iq type='result' id='p1' to='alice@localhost/a'/>")
	if r := alice.expect("result", func(el *wire.Element) bool { return el.Get("id") == "p1" }); r.Get("type") != "result" {
		t.Fatalf("routed result: %s", r)
	}
	if r := alice.iq("get", "bob@localhost/none", "<ping xmlns='urn:xmpp:ping'/>"); errorCondition(r) != "service-unavailable" {
		t.Fatalf("iq to missing resource: %s", r)
	}
}

func TestResourceConflictAndDirectTLS(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	first := login(t, srv.Server, "alice", "pa", "same")
	// Direct TLS (XEP-0368) with SCRAM-SHA-256.
	conn, err := tls.Dial("tcp", srv.Addrs().C2STLS, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatal(err)
	}
	c := &tclient{t: t, conn: conn, domain: "localhost"}
	c.r = wire.NewReader(deadlined{c})
	t.Cleanup(func() { conn.Close() })
	if f := c.open(); f.Child(ns.TLS, "starttls") != nil {
		t.Fatalf("STARTTLS offered on direct TLS: %s", f)
	}
	if cond, _ := c.auth("SCRAM-SHA-256", "alice", "pa"); cond != "" {
		t.Fatal(cond)
	}
	c.bind("same")
	el, err := first.nextErr()
	if err != nil || el.Child(ns.StreamErrors, "conflict") == nil {
		t.Fatalf("older session: %v %v", el, err)
	}
	c.sync()
	// The replaced session's end does not count twice.
	for deadline := time.Now().Add(10 * time.Second); srv.c2s.Open() > 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(srv.metrics.Sessions.WithLabelValues("bound")); n != 1 {
		t.Fatalf("bound sessions metric %v, want 1", n)
	}
}

// TestLimits: stanza size → policy-violation, malformed XML →
// not-well-formed, unauthenticated timeout, per-address cap.
func TestLimits(t *testing.T) {
	srv := startServer(t, WithLimits(Limits{MaxStanzaSize: 4096, AuthTimeout: 2 * time.Second, MaxConnsPerAddr: 20}))
	srv.user(t, "alice", "pa")
	streamErr := func(c *tclient) string {
		for {
			el, err := c.nextErr()
			if err != nil {
				return "read error: " + err.Error()
			}
			if el.Name.Local == "error" && el.Name.Space == ns.Stream {
				return el.FirstElement().Name.Local
			}
		}
	}
	a := login(t, srv.Server, "alice", "pa", "a")
	a.send("<message to='alice@localhost'><body>%s</body></message>", strings.Repeat("x", 5000))
	if got := streamErr(a); got != "policy-violation" {
		t.Fatalf("oversized stanza: %s", got)
	}
	b := login(t, srv.Server, "alice", "pa", "b")
	b.send("<message><body>a</bod></message>")
	if got := streamErr(b); got != "not-well-formed" {
		t.Fatalf("malformed: %s", got)
	}
	c := login(t, srv.Server, "alice", "pa", "c")
	c.send("<message><!-- comment --></message>")
	if got := streamErr(c); got != "restricted-xml" {
		t.Fatalf("comment: %s", got)
	}
	// An idle unauthenticated connection is dropped.
	idle := rawDial(t, srv.Addrs().C2S, "localhost")
	idle.open()
	if got := streamErr(idle); got != "connection-timeout" {
		t.Fatalf("idle unauthenticated: %s", got)
	}
	// Per-address cap: 20 open, the 21st refused.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 20; i++ {
		cn, err := net.Dial("tcp", srv.Addrs().C2S)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
	}
	// The server counts a connection once its goroutine runs: wait for all.
	for deadline := time.Now().Add(10 * time.Second); srv.c2s.Open() < 20 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	over := rawDial(t, srv.Addrs().C2S, "localhost")
	over.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := over.r.ReadHeader(); err != nil {
		t.Fatalf("refusal header: %v", err)
	}
	if got := streamErr(over); got != "policy-violation" {
		t.Fatalf("over the cap: %s", got)
	}
}

func TestControlSocketAndMetrics(t *testing.T) {
	srv := startServer(t, WithMetricsAddr("127.0.0.1:0"))
	key, err := store.ReadKey(srv.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	adminKey := store.DeriveKey(key, "admin control v1")
	ctx := context.Background()
	call := func(req control.Request) (control.Response, error) {
		return control.Call(ctx, srv.Addrs().Control, adminKey, req)
	}
	if _, err := call(control.Request{Op: control.OpUserAdd, User: "carol@localhost", Password: "pc"}); err != nil {
		t.Fatal(err)
	}
	resp, err := call(control.Request{Op: control.OpUserList})
	if err != nil || !slices.Equal(resp.Users, []string{"carol"}) {
		t.Fatalf("list: %v %v", resp, err)
	}
	before := srv.TestClock().Now()
	resp, err = call(control.Request{Op: control.OpClockAdvance, Duration: "7d"})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.TestClock().Now().Sub(before); got != 7*24*time.Hour {
		t.Fatalf("clock moved %v", got)
	}
	// A wrong key is refused.
	if _, err := control.Call(ctx, srv.Addrs().Control, make([]byte, 32), control.Request{Op: control.OpUserList}); err == nil || !strings.Contains(err.Error(), "not authorised") {
		t.Fatalf("wrong key: %v", err)
	}
	// Metrics on loopback.
	c := login(t, srv.Server, "carol", "pc", "c")
	c.send("<message to='carol@localhost/c'><body>m</body></message>")
	c.expect("message", isMessage)
	res, err := http.Get("http://" + srv.Addrs().Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, m := range []string{`xmppref_sessions{state="bound"} 1`, `xmppref_auth_total{mechanism="SCRAM-SHA-1",result="success"} 1`, `xmppref_stanzas_total{kind="message",outcome="delivered"} 1`, "xmppref_offline_messages 0"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	if strings.Contains(string(body), "127.0.0.1") {
		t.Error("metrics carry an address")
	}
	if _, err := New(srv.Policy(), WithDataDir(t.TempDir()), WithKeyFile(t.TempDir()+"/k"), WithMetricsAddr("0.0.0.0:0")); err == nil {
		t.Error("a non-loopback metrics address was accepted")
	}
}

func TestServerOnRealClockRefusesClockCommands(t *testing.T) {
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	real, err := New(pol, WithDataDir(dir+"/d"), WithKeyFile(dir+"/k"), WithC2SAddr("127.0.0.1:0"), WithC2STLSAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := real.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	if real.TestClock() != nil {
		t.Fatal("test clock without WithTestClock")
	}
	if _, err := real.Control(context.Background(), control.Request{Op: control.OpClockAdvance, Duration: "1d"}); err == nil {
		t.Fatal("real clock advanced")
	}
}
