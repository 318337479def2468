package reference

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"github.com/xmppcheck/xmppcheck/spec"
)

// secure opens a stream, negotiates TLS and stops before authentication.
func secure(t *testing.T, srv *Server) *tclient {
	t.Helper()
	c := rawDial(t, srv.Addrs().C2S, srv.Domain())
	c.open()
	if err := c.startTLS(tls.VersionTLS12, 0); err != nil {
		t.Fatal(err)
	}
	return c
}

func register(c *tclient, user, pass string) *wire.Element {
	return c.iq("set", "", fmt.Sprintf("<query xmlns='jabber:iq:register'><username>%s</username><password>%s</password></query>", user, pass))
}

// TestRegistrationForm: registration.minimal-data — the form asks exactly
// the policy's fields, and the stream feature is offered after TLS only.
func TestRegistrationForm(t *testing.T) {
	srv := startServer(t)
	plain := rawDial(t, srv.Addrs().C2S, "localhost")
	if f := plain.open(); f.Child(ns.RegisterFeature, "register") != nil || f.Child(ns.SASL, "mechanisms") != nil {
		t.Fatalf("registration or SASL offered before TLS: %s", f)
	}
	c := secure(t, srv.Server)
	if c.features.Child(ns.RegisterFeature, "register") == nil {
		t.Fatalf("no register feature: %s", c.features)
	}
	r := c.iq("get", "", "<query xmlns='jabber:iq:register'/>")
	q := r.Child(ns.Register, "query")
	if r.Get("type") != "result" || q == nil {
		t.Fatalf("form: %s", r)
	}
	claim, _ := srv.Policy().Claim(spec.RegistrationMinimalData)
	req, opt := claim.Params.Fields("required"), claim.Params.Fields("optional")
	allowed := append(slices.Clone(req), opt...)
	var legacy []string
	for _, el := range q.Elements() {
		if el.Name.Space == ns.Register && el.Name.Local != "instructions" {
			legacy = append(legacy, el.Name.Local)
		}
	}
	slices.Sort(legacy)
	want := slices.Sorted(slices.Values(allowed))
	if !slices.Equal(legacy, want) {
		t.Fatalf("legacy fields %v, want %v", legacy, want)
	}
	x := q.Child(ns.DataForms, "x")
	var fields []string
	for _, f := range x.Elements() {
		if f.Name.Local != "field" || f.Get("type") == "hidden" {
			continue
		}
		fields = append(fields, f.Get("var"))
		required := f.Child(ns.DataForms, "required") != nil
		if required != slices.Contains(req, f.Get("var")) {
			t.Errorf("field %s required=%v", f.Get("var"), required)
		}
	}
	slices.Sort(fields)
	if !slices.Equal(fields, want) {
		t.Fatalf("form fields %v, want %v", fields, want)
	}
}

// TestRegistrationRateLimit: registration.rate-limited — max registrations
// per address per window, then refusal; after the window, allowed again.
func TestRegistrationRateLimit(t *testing.T) {
	srv := startServer(t)
	claim, _ := srv.Policy().Claim(spec.RegistrationRateLimited)
	max, window := claim.Params.Count("max"), claim.Params.Duration("window")
	c := secure(t, srv.Server)
	for i := 0; i < max; i++ {
		if r := register(c, fmt.Sprintf("user%d", i), "pw"); r.Get("type") != "result" {
			t.Fatalf("registration %d refused: %s", i+1, r)
		}
	}
	r := register(c, "one-too-many", "pw")
	if r.Get("type") != "error" || errorCondition(r) != "policy-violation" {
		t.Fatalf("registration %d: %s", max+1, r)
	}
	if users, _ := srv.Users(t.Context()); slices.Contains(users, "one-too-many") {
		t.Fatal("refused registration created the account")
	}
	// Conflicts and bad input are told apart.
	srv.TestClock().Advance(window)
	if r := register(c, "user0", "pw"); errorCondition(r) != "conflict" {
		t.Fatalf("taken name: %s", r)
	}
	if r := c.iq("set", "", "<query xmlns='jabber:iq:register'><username>x</username></query>"); errorCondition(r) != "not-acceptable" {
		t.Fatalf("missing password: %s", r)
	}
	if r := register(c, "one-too-many", "pw"); r.Get("type") != "result" {
		t.Fatalf("after the window: %s", r)
	}
	// The new account logs in.
	login(t, srv.Server, "one-too-many", "pw", "r")
}

// TestAccountRemoval: account.self-deletion and account.address-reuse —
// <remove/> erases roster, vCard and offline messages, contacts lose every
// subscription, all sessions close, and the name is free at once with
// nothing inherited.
func TestAccountRemoval(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	alice := login(t, srv.Server, "alice", "pa", "a")
	alice2 := login(t, srv.Server, "alice", "pa", "a2")
	bob := login(t, srv.Server, "bob", "pb", "b")
	for _, c := range []*tclient{alice, bob} {
		c.iq("get", "", "<query xmlns='jabber:iq:roster'/>")
		c.send("<presence/>")
		c.sync()
	}
	// Mutual subscription.
	alice.send("<presence to='bob@localhost' type='subscribe'/>")
	bob.expect("request", func(el *wire.Element) bool { return el.Get("type") == "subscribe" })
	bob.send("<presence to='alice@localhost' type='subscribed'/>")
	bob.send("<presence to='alice@localhost' type='subscribe'/>")
	alice.expect("request", func(el *wire.Element) bool { return el.Get("type") == "subscribe" })
	alice.send("<presence to='bob@localhost' type='subscribed'/>")
	alice.iq("set", "", "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='alice-roster-marker'/></query>")
	alice.iq("set", "", "<vCard xmlns='vcard-temp'><FN>alice-vcard-marker</FN></vCard>")
	bob.sync()
	r := bob.iq("get", "", "<query xmlns='jabber:iq:roster'/>")
	if s := rosterItem(r, "alice@localhost").Get("subscription"); s != "both" {
		t.Fatalf("setup: bob's subscription %q: %s", s, r)
	}
	// A message kept for alice while she is... online elsewhere is fine; keep
	// an offline one by going unavailable on every resource first.
	alice.send("<presence type='unavailable'/>")
	alice.sync()
	bob.send("<message to='alice@localhost'><body>alice-offline-marker</body></message>")
	bob.sync()
	d := srv.dump(t)
	for _, m := range []string{"alice-roster-marker", "alice-vcard-marker", "alice-offline-marker", `"name\":\"alice\"`} {
		if !strings.Contains(d, m) {
			t.Fatalf("positive control: %q not stored before removal:\n%s", m, d)
		}
	}

	r = alice.iq("set", "", "<query xmlns='jabber:iq:register'><remove/></query>")
	if r.Get("type") != "result" {
		t.Fatalf("remove: %s", r)
	}
	for _, c := range []*tclient{alice, alice2} {
		el, err := c.nextErr()
		for err == nil && el.Name.Local != "error" {
			el, err = c.nextErr()
		}
		if err == nil && el.Child(ns.StreamErrors, "not-authorized") == nil {
			t.Fatalf("session not closed with not-authorized: %s", el)
		}
	}
	// Bob's side: unsubscribe and unsubscribed arrive, the item has no
	// subscription left.
	got := map[string]bool{}
	for !got["unsubscribe"] || !got["unsubscribed"] {
		el := bob.next()
		if isPresence(el) && el.Get("from") == "alice@localhost" {
			got[el.Get("type")] = true
		}
	}
	r = bob.iq("get", "", "<query xmlns='jabber:iq:roster'/>")
	if it := rosterItem(r, "alice@localhost"); it == nil || it.Get("subscription") != "none" || it.Get("ask") != "" {
		t.Fatalf("bob's item after removal: %s", r)
	}
	d = srv.dump(t)
	for _, m := range []string{"alice-roster-marker", "alice-vcard-marker", "alice-offline-marker", `"name\":\"alice\"`} {
		if strings.Contains(d, m) {
			t.Fatalf("%q survives removal:\n%s", m, d)
		}
	}
	// Removed accounts cannot log in; the address is free at once.
	c := secure(t, srv.Server)
	if cond, _ := c.auth("SCRAM-SHA-1", "alice", "pa"); cond != "not-authorized" {
		t.Fatalf("removed account authenticated: %q", cond)
	}
	c2 := secure(t, srv.Server)
	if r := register(c2, "alice", "new-owner"); r.Get("type") != "result" {
		t.Fatalf("re-register: %s", r)
	}
	next := login(t, srv.Server, "alice", "new-owner", "n")
	r = next.iq("get", "", "<query xmlns='jabber:iq:roster'/>")
	if len(r.Child(ns.Roster, "query").Elements()) != 0 {
		t.Fatalf("new owner inherits a roster: %s", r)
	}
	if v := next.iq("get", "", "<vCard xmlns='vcard-temp'/>"); len(v.Child(ns.VCard, "vCard").Elements()) != 0 {
		t.Fatalf("new owner inherits a vCard: %s", v)
	}
	next.send("<presence/>")
	next.send("<message to='alice@localhost/n'><body>fence</body></message>")
	if m := next.expect("message", isMessage); m.ChildText(ns.Client, "body") != "fence" {
		t.Fatalf("new owner inherits offline messages: %s", m)
	}
}

func TestPasswordChange(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "old")
	alice := login(t, srv.Server, "alice", "old", "a")
	if r := alice.iq("get", "", "<query xmlns='jabber:iq:register'/>"); r.Child(ns.Register, "query").Child(ns.Register, "registered") == nil {
		t.Fatalf("registered state: %s", r)
	}
	if r := alice.iq("set", "localhost", "<query xmlns='jabber:iq:register'><username>alice</username><password>new</password></query>"); r.Get("type") != "result" {
		t.Fatalf("change: %s", r)
	}
	if r := alice.iq("set", "localhost", "<query xmlns='jabber:iq:register'><username>bob</username><password>x</password></query>"); r.Get("type") != "error" {
		t.Fatalf("changed someone else's password: %s", r)
	}
	c := secure(t, srv.Server)
	if cond, _ := c.auth("SCRAM-SHA-256", "alice", "old"); cond != "not-authorized" {
		t.Fatalf("old password still works: %q", cond)
	}
	login(t, srv.Server, "alice", "new", "b")
}
