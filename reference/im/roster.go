package im

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// itemElement renders a roster item (RFC 6121 §2.1.2).
func itemElement(it store.RosterItem, remove bool) *wire.Element {
	el := wire.New(ns.Roster, "item").SetAttr("jid", it.JID)
	if remove {
		return el.SetAttr("subscription", "remove")
	}
	el.SetAttr("name", it.Name)
	sub := it.Sub
	if sub == "" {
		sub = store.SubNone
	}
	el.SetAttr("subscription", string(sub))
	if it.Ask {
		el.SetAttr("ask", "subscribe")
	}
	for _, g := range it.Groups {
		el.Add(wire.New(ns.Roster, "group").AddText(g))
	}
	return el
}

// push sends a roster push to the user's interested resources (§2.1.6).
func (r *Router) push(user string, it store.RosterItem, remove bool) {
	if it.Hidden && !remove {
		return
	}
	for _, res := range r.resourcesOf(user) {
		res.u.mu.Lock()
		interested := res.interested
		res.u.mu.Unlock()
		if !interested {
			continue
		}
		iq := wire.New(ns.Client, "iq").SetAttr("type", "set").SetAttr("id", r.newPushID()).SetAttr("to", res.jid.String())
		iq.Add(wire.New(ns.Roster, "query").Add(itemElement(it, remove)))
		res.sess.Send(marshal(iq))
	}
}

// rosterIQ answers roster get and set from the user's own resource
// (RFC 6121 §2.1.3, §2.3, §2.5).
func (r *Router) rosterIQ(ctx context.Context, res *Resource, iq *host.IQ) (*wire.Element, error) {
	user := res.jid.Localpart()
	if iq.Type == "get" {
		items, err := r.cfg.Store.Roster(user)
		if err != nil {
			return nil, err
		}
		res.u.mu.Lock()
		res.interested = true
		res.u.mu.Unlock()
		q := wire.New(ns.Roster, "query")
		for _, it := range items {
			if !it.Hidden {
				q.Add(itemElement(it, false))
			}
		}
		return q, nil
	}
	items := iq.Payload.Elements()
	if len(items) != 1 || items[0].Name.Local != "item" || items[0].Name.Space != ns.Roster {
		return nil, host.Errorf(host.ErrTypeModify, "bad-request", "a roster set carries exactly one item")
	}
	item := items[0]
	cj, err := jid.Parse(item.Get("jid"))
	if err != nil {
		return nil, host.Errorf(host.ErrTypeModify, "jid-malformed", "the item's jid is not a valid JID")
	}
	cj = cj.Bare()
	if cj.Equal(res.jid.Bare()) {
		return nil, host.Errorf(host.ErrTypeCancel, "not-allowed", "the roster cannot hold the user's own address")
	}
	if item.Get("subscription") == "remove" {
		return nil, r.rosterRemove(ctx, user, cj)
	}
	var groups []string
	seen := map[string]bool{}
	for _, g := range item.Elements() {
		if g.Name.Local != "group" {
			continue
		}
		name := g.Text()
		if name == "" || seen[name] {
			return nil, host.Errorf(host.ErrTypeModify, "bad-request", "empty or duplicate group")
		}
		seen[name] = true
		groups = append(groups, name)
	}
	it, err := r.cfg.Store.UpdateRosterItem(user, cj.String(), r.cfg.MaxRosterItems, func(it *store.RosterItem, _ bool) (bool, error) {
		// §2.3.2: the client sets name and groups, never subscription.
		it.Name = item.Get("name")
		it.Groups = groups
		it.Hidden = false
		return true, nil
	})
	if errors.Is(err, store.ErrQuota) {
		return nil, host.Errorf(host.ErrTypeWait, "resource-constraint", "the roster is full")
	}
	if err != nil {
		return nil, err
	}
	r.push(user, it, false)
	return nil, nil
}

// rosterRemove deletes a contact and cancels the subscriptions both ways
// (RFC 6121 §2.5.2).
func (r *Router) rosterRemove(ctx context.Context, user string, cj jid.JID) error {
	var old store.RosterItem
	var existed bool
	_, err := r.cfg.Store.UpdateRosterItem(user, cj.String(), 0, func(it *store.RosterItem, exists bool) (bool, error) {
		old, existed = *it, exists && !it.Hidden
		return false, nil
	})
	if err != nil {
		return err
	}
	if !existed {
		return host.ErrItemNotFound
	}
	bare := jid.MustParse(user + "@" + r.cfg.Domain)
	if old.Sub.HasTo() || old.Ask {
		r.sendSubscription(ctx, bare, cj, "unsubscribe")
	}
	if old.Sub.HasFrom() || old.PendingIn {
		r.sendSubscription(ctx, bare, cj, "unsubscribed")
		r.unavailableTo(ctx, user, cj)
	}
	r.push(user, old, true)
	return nil
}

// sendSubscription routes a server-generated subscription stanza.
func (r *Router) sendSubscription(ctx context.Context, from, to jid.JID, typ string) {
	el := wire.New(ns.Client, "presence").SetAttr("type", typ).SetAttr("from", from.String()).SetAttr("to", to.String())
	r.routeSubscription(ctx, from, to, typ, el)
}

// routeSubscription delivers a subscription stanza from a local user to its
// contact: processed at once for a local contact, handed to s2s otherwise.
func (r *Router) routeSubscription(ctx context.Context, from, to jid.JID, typ string, el *wire.Element) {
	if r.isLocal(to) {
		if to.Localpart() != "" {
			r.inboundSubscription(ctx, from, to.Localpart(), typ, el)
		}
		return
	}
	if !r.isService(to) {
		r.toRemote(ctx, to, el)
	}
}

// unavailableTo sends unavailable presence from the user's available
// resources to a contact whose subscription ended.
func (r *Router) unavailableTo(ctx context.Context, user string, to jid.JID) {
	all, _ := r.availableOf(user)
	for _, res := range all {
		el := wire.New(ns.Client, "presence").SetAttr("type", "unavailable").SetAttr("from", res.jid.String()).SetAttr("to", to.String())
		r.deliverTo(ctx, to, el)
	}
}

// outboundSubscription processes a subscription stanza a local user sends
// (RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2).
func (r *Router) outboundSubscription(ctx context.Context, res *Resource, contact jid.JID, typ string, el *wire.Element) {
	user := res.jid.Localpart()
	from := res.jid.Bare()
	if contact.Equal(from) {
		return
	}
	// §3.1.2: the server stamps the bare JID.
	el.SetAttr("from", from.String()).SetAttr("to", contact.String())
	route := true
	var stateChanged bool
	it, err := r.cfg.Store.UpdateRosterItem(user, contact.String(), r.cfg.MaxRosterItems, func(it *store.RosterItem, exists bool) (bool, error) {
		before := *it
		switch typ {
		case "subscribe":
			if !it.Sub.HasTo() {
				it.Ask = true
			}
			it.Hidden = false
		case "subscribed":
			if !it.PendingIn {
				// Pre-approval (§3.4) is not offered: nothing to approve.
				route = false
				return exists, nil
			}
			it.PendingIn, it.Request = false, nil
			if it.Sub == store.SubTo {
				it.Sub = store.SubBoth
			} else if it.Sub == store.SubNone || it.Sub == "" {
				it.Sub = store.SubFrom
			}
			it.Hidden = false
		case "unsubscribe":
			it.Ask = false
			if it.Sub == store.SubBoth {
				it.Sub = store.SubFrom
			} else if it.Sub == store.SubTo {
				it.Sub = store.SubNone
			}
		case "unsubscribed":
			it.PendingIn, it.Request = false, nil
			if it.Sub == store.SubBoth {
				it.Sub = store.SubTo
			} else if it.Sub == store.SubFrom {
				it.Sub = store.SubNone
			}
			if !exists || (it.Hidden && it.Sub == store.SubNone && !it.Ask) {
				stateChanged = exists
				return false, nil
			}
		}
		stateChanged = !exists || before.Sub != it.Sub || before.Ask != it.Ask || before.PendingIn != it.PendingIn || before.Hidden != it.Hidden
		return true, nil
	})
	if err != nil {
		if errors.Is(err, store.ErrQuota) {
			r.bounce(ctx, el, host.Errorf(host.ErrTypeWait, "resource-constraint", "the roster is full"))
		}
		return
	}
	if stateChanged {
		r.push(user, it, false)
	}
	if !route {
		return
	}
	r.routeSubscription(ctx, from, contact, typ, el)
	switch typ {
	case "subscribed":
		// §3.1.5: the contact now receives the user's current presence.
		all, _ := r.availableOf(user)
		for _, o := range all {
			o.u.mu.Lock()
			p := o.presence
			o.u.mu.Unlock()
			if p != nil {
				c := p.Copy()
				c.SetAttr("from", o.jid.String()).SetAttr("to", contact.String())
				r.deliverTo(ctx, contact, c)
			}
		}
	case "unsubscribed":
		r.unavailableTo(ctx, user, contact)
	}
	r.inc("presence", "handled")
}

// inboundSubscription processes a subscription stanza addressed to a local
// user (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3). from is a bare JID.
func (r *Router) inboundSubscription(ctx context.Context, from jid.JID, contact, typ string, el *wire.Element) {
	cbare, err := jid.New(contact, r.cfg.Domain, "")
	if err != nil {
		return
	}
	exists, err := r.cfg.Store.UserExists(contact)
	if err != nil {
		return
	}
	if !exists {
		if typ == "subscribe" {
			// §3.1.3: no such contact: the request is refused.
			r.sendSubscriptionBack(ctx, cbare, from, "unsubscribed")
		}
		return
	}
	el.SetAttr("from", from.String()).SetAttr("to", cbare.String())
	deliver := false
	autoReply := ""
	var changed bool
	it, err := r.cfg.Store.UpdateRosterItem(contact, from.String(), r.cfg.MaxRosterItems, func(it *store.RosterItem, exists bool) (bool, error) {
		before := *it
		switch typ {
		case "subscribe":
			if it.Sub.HasFrom() {
				autoReply = "subscribed"
				return exists, nil
			}
			it.PendingIn = true
			it.Request = marshal(el)
			if !exists {
				it.Hidden = true
			}
			deliver = true
		case "subscribed":
			if !it.Ask {
				return exists, nil
			}
			it.Ask = false
			if it.Sub == store.SubFrom {
				it.Sub = store.SubBoth
			} else if it.Sub == store.SubNone || it.Sub == "" {
				it.Sub = store.SubTo
			}
			it.Hidden = false
			deliver = true
		case "unsubscribe":
			if !it.Sub.HasFrom() && !it.PendingIn {
				return exists, nil
			}
			it.PendingIn, it.Request = false, nil
			if it.Sub == store.SubBoth {
				it.Sub = store.SubTo
			} else if it.Sub == store.SubFrom {
				it.Sub = store.SubNone
			}
			deliver = true
			if it.Hidden && it.Sub == store.SubNone && !it.Ask {
				changed = false
				return false, nil
			}
		case "unsubscribed":
			if !it.Sub.HasTo() && !it.Ask {
				return exists, nil
			}
			it.Ask = false
			if it.Sub == store.SubBoth {
				it.Sub = store.SubFrom
			} else if it.Sub == store.SubTo {
				it.Sub = store.SubNone
			}
			deliver = true
		}
		changed = exists && (before.Sub != it.Sub || before.Ask != it.Ask) || !exists && !it.Hidden
		return exists || typ == "subscribe", nil
	})
	if err != nil {
		return
	}
	if changed {
		r.push(contact, it, false)
	}
	if autoReply != "" {
		r.sendSubscriptionBack(ctx, cbare, from, autoReply)
		return
	}
	if deliver {
		all, _ := r.availableOf(contact)
		b := marshal(el)
		for _, res := range all {
			res.sess.Send(b)
		}
	}
	if typ == "unsubscribe" && deliver {
		// §3.3.3: the former subscriber hears the contact go offline.
		r.unavailableTo(ctx, contact, from)
	}
}

// sendSubscriptionBack sends a server-generated answer from a local account
// to the requester.
func (r *Router) sendSubscriptionBack(ctx context.Context, from, to jid.JID, typ string) {
	el := wire.New(ns.Client, "presence").SetAttr("type", typ).SetAttr("from", from.String()).SetAttr("to", to.String())
	if r.isLocal(to) {
		if to.Localpart() != "" {
			r.inboundSubscription(ctx, from, to.Localpart(), typ, el)
		}
		return
	}
	r.toRemote(ctx, to, el)
}
