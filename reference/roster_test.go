package reference

import (
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

func rosterItem(el *wire.Element, j string) *wire.Element {
	q := el.Child(ns.Roster, "query")
	if q == nil {
		return nil
	}
	for _, it := range q.Elements() {
		if it.Get("jid") == j {
			return it
		}
	}
	return nil
}

func isPush(j string) func(*wire.Element) bool {
	return func(el *wire.Element) bool {
		return el.Name.Local == "iq" && el.Get("type") == "set" && rosterItem(el, j) != nil
	}
}

// TestSubscriptionHandshake runs RFC 6121 §3.1: alice subscribes to bob,
// bob (offline at first) receives the pending request at login, approves
// it, and presence then flows; roster pushes track each state.
func TestSubscriptionHandshake(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	alice := login(t, srv.Server, "alice", "pa", "a")
	if r := alice.iq("get", "", "<query xmlns='jabber:iq:roster'/>"); r.Get("type") != "result" || len(r.Child(ns.Roster, "query").Elements()) != 0 {
		t.Fatalf("empty roster: %s", r)
	}
	alice.send("<presence/>")
	alice.sync()
	if r := alice.iq("set", "", "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='roster-name-marker'><group>Friends</group></item></query>"); r.Get("type") != "result" {
		t.Fatalf("roster set: %s", r)
	}
	alice.send("<presence to='bob@localhost' type='subscribe'/>")
	push := alice.expect("push ask=subscribe", func(el *wire.Element) bool {
		it := rosterItem(el, "bob@localhost")
		return isPush("bob@localhost")(el) && it.Get("ask") == "subscribe"
	})
	if it := rosterItem(push, "bob@localhost"); it.Get("subscription") != "none" || it.Get("name") != "roster-name-marker" {
		t.Fatalf("push %s", push)
	}

	bob := login(t, srv.Server, "bob", "pb", "b")
	bob.iq("get", "", "<query xmlns='jabber:iq:roster'/>")
	bob.send("<presence/>")
	req := bob.expect("subscription request", func(el *wire.Element) bool { return isPresence(el) && el.Get("type") == "subscribe" })
	if req.Get("from") != "alice@localhost" {
		t.Fatalf("request from %q, want the bare JID", req.Get("from"))
	}
	// The pending request is not a roster item yet (RFC 6121 §3.1.3).
	if r := bob.iq("get", "", "<query xmlns='jabber:iq:roster'/>"); rosterItem(r, "alice@localhost") != nil {
		t.Fatalf("pending request shown as roster item: %s", r)
	}
	bob.send("<presence to='alice@localhost' type='subscribed'/>")
	bpush := bob.expect("bob's push", isPush("alice@localhost"))
	if s := rosterItem(bpush, "alice@localhost").Get("subscription"); s != "from" {
		t.Fatalf("bob's item subscription %q, want from", s)
	}
	var apush *wire.Element
	gotSubscribed := false
	for apush == nil || !gotSubscribed {
		el := alice.next()
		switch {
		case isPresence(el) && el.Get("type") == "subscribed":
			gotSubscribed = true
		case isPush("bob@localhost")(el) && rosterItem(el, "bob@localhost").Get("subscription") == "to":
			apush = el
		}
	}
	if rosterItem(apush, "bob@localhost").Get("ask") != "" {
		t.Fatalf("ask still set: %s", apush)
	}
	// §3.1.5: after approving, bob's presence reaches alice.
	p := alice.expect("bob's presence", func(el *wire.Element) bool { return isPresence(el) && el.Get("type") == "" })
	if p.Get("from") != "bob@localhost/b" {
		t.Fatalf("presence from %s", p.Get("from"))
	}
	// Presence updates flow to subscribers only: bob → alice, not alice → bob.
	bob.send("<presence><show>away</show></presence>")
	if p := alice.expect("bob away", isPresence); p.ChildText(ns.Client, "show") != "away" {
		t.Fatalf("got %s", p)
	}
	alice.send("<presence><show>dnd</show></presence>")
	alice.sync()
	bob.send("<message to='bob@localhost/b'><body>fence</body></message>")
	for {
		el := bob.next()
		if isPresence(el) && el.Get("from") == "alice@localhost/a" {
			t.Fatalf("bob got alice's presence without a subscription: %s", el)
		}
		if isMessage(el) {
			break
		}
	}
	// Going offline is broadcast.
	bob.send("<presence type='unavailable'/>")
	alice.expect("unavailable", func(el *wire.Element) bool {
		return isPresence(el) && el.Get("type") == "unavailable" && el.Get("from") == "bob@localhost/b"
	})
	// Roster remove cancels both ways (§2.5.2).
	bob.send("<presence/>")
	bob.sync()
	alice.iq("set", "", "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query>")
	bob.expect("unsubscribe", func(el *wire.Element) bool { return isPresence(el) && el.Get("type") == "unsubscribe" })
	r := bob.iq("get", "", "<query xmlns='jabber:iq:roster'/>")
	if it := rosterItem(r, "alice@localhost"); it == nil || it.Get("subscription") != "none" {
		t.Fatalf("bob's item after alice removed him: %s", r)
	}
	if d := srv.dump(t); strings.Contains(d, "roster-name-marker") {
		t.Fatalf("removed roster item still stored:\n%s", d)
	}
}

func TestRosterErrors(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	alice := login(t, srv.Server, "alice", "pa", "a")
	for _, tc := range []struct{ payload, cond string }{
		{"<query xmlns='jabber:iq:roster'><item jid='a@x'/><item jid='b@x'/></query>", "bad-request"},
		{"<query xmlns='jabber:iq:roster'><item jid='alice@localhost'/></query>", "not-allowed"},
		{"<query xmlns='jabber:iq:roster'><item jid='c@x'><group/></item></query>", "bad-request"},
		{"<query xmlns='jabber:iq:roster'><item jid='nobody@x' subscription='remove'/></query>", "item-not-found"},
	} {
		r := alice.iq("set", "", tc.payload)
		if r.Get("type") != "error" || errorCondition(r) != tc.cond {
			t.Errorf("%s: got %s, want %s", tc.payload, r, tc.cond)
		}
	}
	// Another user's roster is not reachable.
	srv.user(t, "bob", "pb")
	if r := alice.iq("get", "bob@localhost", "<query xmlns='jabber:iq:roster'/>"); r.Get("type") != "error" {
		t.Fatalf("read bob's roster: %s", r)
	}
}
