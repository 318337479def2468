package im

import (
	"context"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

func isSubscription(typ string) bool {
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		return true
	}
	return false
}

// handlePresence processes presence from a local resource (RFC 6121 §3, §4).
func (r *Router) handlePresence(ctx context.Context, res *Resource, el *wire.Element) {
	typ := el.Get("type")
	toAttr := el.Get("to")
	if toAttr == "" {
		switch typ {
		case "":
			r.presenceAvailable(ctx, res, el)
		case "unavailable":
			r.presenceUnavailable(ctx, res, el)
		default:
			// Subscription requests and probes need a 'to'; errors to the
			// server are dropped.
			r.inc("presence", "dropped")
		}
		return
	}
	to, err := jid.Parse(toAttr)
	if err != nil {
		r.inc("presence", "dropped")
		return
	}
	switch {
	case isSubscription(typ):
		r.outboundSubscription(ctx, res, to.Bare(), typ, el)
	case typ == "" || typ == "unavailable":
		r.directedPresence(ctx, res, to, el)
	case typ == "error":
		r.deliverTo(ctx, to, el)
	default: // probes come from servers, not clients (RFC 6121 §4.3)
		r.inc("presence", "dropped")
	}
}

func priorityOf(el *wire.Element) int {
	p, err := strconv.Atoi(strings.TrimSpace(el.ChildText(ns.Client, "priority")))
	if err != nil {
		return 0
	}
	return max(-128, min(127, p))
}

// presenceAvailable handles initial and subsequent available presence
// (RFC 6121 §4.2, §4.4).
func (r *Router) presenceAvailable(ctx context.Context, res *Resource, el *wire.Element) {
	u := res.u
	u.mu.Lock()
	if res.gone {
		u.mu.Unlock()
		return
	}
	initial := !res.available
	res.available = true
	res.priority = priorityOf(el)
	res.presence = el.Copy()
	res.presence.SetAttr("to", "")
	prio := res.priority
	u.mu.Unlock()

	roster, err := r.cfg.Store.Roster(res.jid.Localpart())
	if err != nil {
		r.cfg.Logger.Error("roster read failed", "conn", res.sess.ID(), "err", err)
	}
	// Broadcast to contacts with a 'from' subscription and to the user's
	// other resources (§4.2.2, §4.4.2).
	r.broadcast(ctx, res, el, roster)
	if initial {
		// §4.2.2: probe contacts with a 'to' subscription; local contacts
		// answer at once with their current presence.
		for _, it := range roster {
			if it.Hidden || !it.Sub.HasTo() {
				continue
			}
			cj, err := jid.Parse(it.JID)
			if err != nil {
				continue
			}
			if r.isLocal(cj) {
				r.answerProbe(ctx, cj.Localpart(), res.jid.Bare(), res.jid)
			} else {
				probe := wire.New(ns.Client, "presence").SetAttr("type", "probe").SetAttr("from", res.jid.Bare().String()).SetAttr("to", cj.String())
				r.toRemote(ctx, cj, probe)
			}
		}
		// §3.1.3: pending inbound subscription requests are delivered again.
		for _, it := range roster {
			if it.PendingIn && len(it.Request) > 0 {
				res.sess.Send(it.Request)
			}
		}
		// The other resources' presence reaches the new one.
		for _, o := range r.resourcesOf(res.jid.Localpart()) {
			if o == res {
				continue
			}
			u.mu.Lock()
			p := o.presence
			avail := o.available
			u.mu.Unlock()
			if avail && p != nil {
				c := p.Copy()
				c.SetAttr("from", o.jid.String()).SetAttr("to", res.jid.String())
				res.sess.Send(marshal(c))
			}
		}
	}
	if prio >= 0 {
		if has, _ := r.cfg.Store.HasOffline(res.jid.Localpart()); has {
			r.deliverOffline(res)
		}
	}
	r.inc("presence", "delivered")
}

// broadcast sends a resource's presence to its subscribed contacts and its
// user's other resources.
func (r *Router) broadcast(ctx context.Context, res *Resource, el *wire.Element, roster []store.RosterItem) {
	el.SetAttr("from", res.jid.String())
	for _, it := range roster {
		if it.Hidden || !it.Sub.HasFrom() {
			continue
		}
		cj, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		c := el.Copy()
		c.SetAttr("to", cj.String())
		r.deliverTo(ctx, cj, c)
	}
	for _, o := range r.resourcesOf(res.jid.Localpart()) {
		if o == res {
			continue
		}
		c := el.Copy()
		c.SetAttr("to", o.jid.String())
		o.sess.Send(marshal(c))
	}
}

// answerProbe sends the presence of contact's available resources to
// prober if contact's roster grants prober a subscription (RFC 6121 §4.3.2).
// to is where the answer goes (a full JID for a local initial presence).
func (r *Router) answerProbe(ctx context.Context, contact string, prober, to jid.JID) {
	it, err := r.cfg.Store.RosterItem(contact, prober.String())
	if err != nil || !it.Sub.HasFrom() {
		return
	}
	for _, o := range r.resourcesOf(contact) {
		o.u.mu.Lock()
		p, avail := o.presence, o.available
		o.u.mu.Unlock()
		if !avail || p == nil {
			continue
		}
		c := p.Copy()
		c.SetAttr("from", o.jid.String()).SetAttr("to", to.String())
		r.deliverTo(ctx, to, c)
	}
}

// presenceUnavailable handles a resource becoming unavailable (§4.5).
func (r *Router) presenceUnavailable(ctx context.Context, res *Resource, el *wire.Element) {
	u := res.u
	u.mu.Lock()
	was := res.available
	res.available = false
	res.presence = nil
	directed := res.directed
	res.directed = nil
	u.mu.Unlock()
	if was || len(directed) > 0 {
		r.broadcastUnavailableWith(ctx, res, directed, el)
	}
}

// broadcastUnavailable sends unavailable presence for res.
func (r *Router) broadcastUnavailable(ctx context.Context, res *Resource, directed map[string]bool) {
	el := wire.New(ns.Client, "presence").SetAttr("type", "unavailable")
	r.broadcastUnavailableWith(ctx, res, directed, el)
}

func (r *Router) broadcastUnavailableWith(ctx context.Context, res *Resource, directed map[string]bool, el *wire.Element) {
	el.SetAttr("type", "unavailable").SetAttr("to", "")
	roster, _ := r.cfg.Store.Roster(res.jid.Localpart())
	r.broadcast(ctx, res, el, roster)
	for to := range directed {
		tj, err := jid.Parse(to)
		if err != nil {
			continue
		}
		c := el.Copy()
		c.SetAttr("to", to)
		r.deliverTo(ctx, tj, c)
	}
}

// directedPresence sends available or unavailable presence to one entity
// (RFC 6121 §4.6) and remembers it, so that the entity hears when the
// resource goes offline.
func (r *Router) directedPresence(ctx context.Context, res *Resource, to jid.JID, el *wire.Element) {
	key := to.String()
	u := res.u
	u.mu.Lock()
	if el.Get("type") == "" && res.available {
		if res.directed == nil {
			res.directed = map[string]bool{}
		}
		if len(res.directed) < 1000 {
			res.directed[key] = true
		}
	} else {
		delete(res.directed, key)
	}
	u.mu.Unlock()
	r.deliverTo(ctx, to, el)
}

// inboundPresence handles presence from another server for a local user.
func (r *Router) inboundPresence(ctx context.Context, from, to jid.JID, el *wire.Element) {
	typ := el.Get("type")
	switch {
	case isSubscription(typ):
		r.inboundSubscription(ctx, from.Bare(), to.Localpart(), typ, el)
	case typ == "probe":
		r.answerProbe(ctx, to.Localpart(), from.Bare(), from)
	default:
		r.deliverTo(ctx, to, el)
	}
}
