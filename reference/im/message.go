package im

import (
	"context"
	"errors"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// routeMessage routes a message stanza whose 'from' is set (RFC 6121 §8).
func (r *Router) routeMessage(ctx context.Context, from jid.JID, el *wire.Element, local bool) {
	toAttr := el.Get("to")
	var to jid.JID
	if toAttr == "" {
		// RFC 6120 §10.3.1: no 'to' means the sender's bare JID.
		to = from.Bare()
		el.SetAttr("to", to.String())
	} else {
		var err error
		if to, err = jid.Parse(toAttr); err != nil {
			r.bounce(ctx, el, host.Errorf(host.ErrTypeModify, "jid-malformed", "the 'to' address is not a valid JID"))
			return
		}
	}
	switch {
	case !r.isLocal(to) && !r.isService(to):
		if !local {
			// Never relay between remote servers.
			r.bounce(ctx, el, host.ErrServiceUnavailable)
			return
		}
		r.toRemote(ctx, to, el)
	case to.Localpart() == "":
		// Messages to the server or a service (RFC 6121 §8.5.1 treats
		// them like a non-existent account).
		switch el.Get("type") {
		case "error", "headline":
			r.inc("message", "dropped")
		default:
			r.bounce(ctx, el, host.ErrServiceUnavailable)
		}
	default:
		r.deliverMessage(ctx, to, el)
	}
}

// deliverMessage applies RFC 6121 §8.5.2 (bare JID) and §8.5.3 (full JID)
// for a local account.
func (r *Router) deliverMessage(ctx context.Context, to jid.JID, el *wire.Element) {
	typ := el.Get("type")
	name := to.Localpart()
	if res := to.Resourcepart(); res != "" {
		for _, rs := range r.resourcesOf(name) {
			if rs.jid.Resourcepart() == res {
				rs.sess.Send(marshal(el))
				r.inc("message", "delivered")
				return
			}
		}
		// §8.5.3.2.1: no such resource.
		switch typ {
		case "groupchat":
			r.bounce(ctx, el, host.ErrServiceUnavailable)
			return
		case "headline", "error":
			r.inc("message", "dropped")
			return
		}
		// normal and chat: treat as addressed to the bare JID.
	}
	all, best := r.availableOf(name)
	switch typ {
	case "error":
		if len(best) > 0 {
			r.send(best, el)
			return
		}
		r.inc("message", "dropped")
		return
	case "groupchat":
		r.bounce(ctx, el, host.ErrServiceUnavailable)
		return
	case "headline":
		if len(all) > 0 {
			r.send(all, el)
			return
		}
		r.inc("message", "dropped")
		return
	}
	if len(best) > 0 {
		// §8.5.2.1.1: the resource(s) with the highest non-negative
		// priority.
		r.send(best, el)
		return
	}
	exists, err := r.cfg.Store.UserExists(name)
	if err != nil || !exists {
		// §8.5.2.2.1: no such account.
		r.bounce(ctx, el, host.ErrServiceUnavailable)
		return
	}
	if !storable(el) {
		r.inc("message", "dropped")
		return
	}
	r.storeOffline(ctx, name, el)
}

func (r *Router) send(to []*Resource, el *wire.Element) {
	b := marshal(el)
	for _, res := range to {
		res.sess.Send(b)
	}
	r.inc("message", "delivered")
}

// storable reports whether a message is worth keeping offline: XEP-0160 §3
// (and XEP-0085 §5.6) keep messages that carry more than chat states.
func storable(el *wire.Element) bool {
	for _, c := range el.Children {
		if c.Elem == nil {
			continue
		}
		switch {
		case c.Elem.Name.Space == ns.ChatStates:
		case c.Elem.Name.Space == ns.Client && c.Elem.Name.Local == "thread":
		default:
			return true
		}
	}
	return false
}

// storeOffline stamps a message with XEP-0203 delay and stores it. It
// returns once the message is on disk.
func (r *Router) storeOffline(ctx context.Context, name string, el *wire.Element) {
	now := r.cfg.Clock.Now()
	d := wire.New(ns.Delay, "delay").SetAttr("from", r.cfg.Domain).SetAttr("stamp", now.UTC().Format("2006-01-02T15:04:05.000Z"))
	el.Add(d)
	err := r.cfg.Store.PushOffline(name, now, marshal(el), r.cfg.MaxOffline)
	switch {
	case errors.Is(err, store.ErrQuota):
		el.Children = el.Children[:len(el.Children)-1]
		r.bounce(ctx, el, host.Errorf(host.ErrTypeWait, "resource-constraint", "the recipient's offline storage is full"))
	case err != nil:
		el.Children = el.Children[:len(el.Children)-1]
		r.cfg.Logger.Error("offline store failed", "err", err)
		r.bounce(ctx, el, host.ErrInternal)
	default:
		r.inc("message", "offline")
		r.cfg.Metrics.OfflineQueue.Set(float64(r.offlineStored.Add(1)))
	}
}

// deliverOffline sends res the user's offline messages and deletes exactly
// those delivered (XEP-0160 §4). Messages are deleted only after they were
// queued for the connection, so a crash in between can repeat a message but
// never lose one.
func (r *Router) deliverOffline(res *Resource) {
	msgs, err := r.cfg.Store.Offline(res.jid.Localpart())
	if err != nil {
		r.cfg.Logger.Error("offline read failed", "conn", res.sess.ID(), "err", err)
		return
	}
	if len(msgs) == 0 {
		return
	}
	keys := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		res.sess.Send(m.Stanza)
		keys = append(keys, m.Key)
	}
	if f, ok := res.sess.(interface{ Flush(time.Duration) error }); ok {
		if err := f.Flush(30 * time.Second); err != nil {
			return // not delivered: keep them
		}
	}
	if err := r.cfg.Store.DeleteOffline(keys); err != nil {
		r.cfg.Logger.Error("offline delete failed", "conn", res.sess.ID(), "err", err)
		return
	}
	r.cfg.Metrics.OfflineQueue.Set(float64(r.offlineStored.Add(-int64(len(keys)))))
}

// PurgeOffline deletes offline messages accepted before now-maxAge
// (offline.retention) and returns how many.
func (r *Router) PurgeOffline(now time.Time, maxAge time.Duration) (int, error) {
	n, err := r.cfg.Store.PurgeOffline(now.Add(-maxAge))
	if n > 0 {
		r.cfg.Metrics.Purged.WithLabelValues("offline").Add(float64(n))
	}
	if c, cerr := r.cfg.Store.CountOffline(); cerr == nil {
		r.offlineStored.Store(int64(c))
		r.cfg.Metrics.OfflineQueue.Set(float64(c))
	}
	return n, err
}
