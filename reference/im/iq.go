package im

import (
	"context"
	"slices"
	"sort"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// HandleIQ registers a handler for IQs to addr ("" = the domain, or a
// service JID) with payload {ns}local.
func (r *Router) HandleIQ(addr, ns, local string, h host.IQHandler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if addr == r.cfg.Domain {
		addr = ""
	}
	r.serverIQ[iqKey{addr, ns, local}] = h
}

// HandleAccountIQ registers a handler for IQs to an account's bare JID.
func (r *Router) HandleAccountIQ(ns, local string, h host.IQHandler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accountIQ[iqKey{"", ns, local}] = h
}

// AddService declares a component JID.
func (r *Router) AddService(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[addr] = true
}

// AddFeature adds a disco#info feature to addr ("" = the domain).
func (r *Router) AddFeature(addr, feature string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if addr == r.cfg.Domain {
		addr = ""
	}
	if !slices.Contains(r.features[addr], feature) {
		r.features[addr] = append(r.features[addr], feature)
	}
}

// AddIdentity adds a disco#info identity to addr ("" = the domain).
func (r *Router) AddIdentity(addr string, id host.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if addr == r.cfg.Domain {
		addr = ""
	}
	r.identities[addr] = append(r.identities[addr], id)
}

// AddItem adds an item to the domain's disco#items.
func (r *Router) AddItem(it host.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, it)
}

// SetRemote sets the s2s router.
func (r *Router) SetRemote(rem host.Remote) { r.remote.Store(&remoteBox{rem}) }

// OnAccountRemoved registers a hook run when an account is removed.
func (r *Router) OnAccountRemoved(f func(ctx context.Context, user string) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removedHooks = append(r.removedHooks, f)
}

// Features returns the disco#info features of addr, sorted.
func (r *Router) Features(addr string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f := slices.Clone(r.features[addr])
	sort.Strings(f)
	return f
}

func (r *Router) serverHandler(addr, ns, local string) host.IQHandler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.serverIQ[iqKey{addr, ns, local}]
}

func (r *Router) accountHandler(ns, local string) host.IQHandler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.accountIQ[iqKey{"", ns, local}]
}

// routeIQ routes an IQ from a local resource (res != nil) or a remote
// entity (RFC 6120 §8.2.3, §10; RFC 6121 §8.5).
func (r *Router) routeIQ(ctx context.Context, from jid.JID, el *wire.Element, res *Resource) {
	typ := el.Get("type")
	var to jid.JID
	toAttr := el.Get("to")
	if toAttr != "" {
		var err error
		if to, err = jid.Parse(toAttr); err != nil {
			r.bounce(ctx, el, host.Errorf(host.ErrTypeModify, "jid-malformed", "the 'to' address is not a valid JID"))
			return
		}
	}
	switch typ {
	case "get", "set":
	case "result", "error":
		// Responses go to full JIDs only; those to the server or a bare JID
		// answer something the server sent (a roster push) and end here.
		if toAttr != "" && to.Resourcepart() != "" {
			if r.isLocal(to) {
				r.deliverTo(ctx, to, el)
				r.inc("iq", "delivered")
			} else if res != nil {
				r.toRemote(ctx, to, el)
			}
			return
		}
		r.inc("iq", "dropped")
		return
	default:
		r.bounce(ctx, el, host.Errorf(host.ErrTypeModify, "bad-request", "IQ type must be get, set, result or error"))
		return
	}
	if el.Get("id") == "" {
		r.bounce(ctx, el, host.Errorf(host.ErrTypeModify, "bad-request", "an IQ needs an id"))
		return
	}
	payloads := el.Elements()
	if len(payloads) != 1 {
		// RFC 6120 §8.2.3: exactly one payload in get and set.
		r.bounce(ctx, el, host.Errorf(host.ErrTypeModify, "bad-request", "a get or set IQ carries exactly one payload"))
		return
	}
	iq := &host.IQ{Stanza: el, Payload: payloads[0], From: from, Type: typ, Local: res != nil}
	if res != nil {
		iq.Addr = res.addr
	}
	p := payloads[0]
	switch {
	case toAttr == "":
		// RFC 6120 §10.3.3: handled on behalf of the sending account.
		iq.To = from.Bare()
		if res != nil && p.Name.Space == ns.Roster && p.Name.Local == "query" {
			r.answer(ctx, iq, func() (*wire.Element, error) { return r.rosterIQ(ctx, res, iq) })
			return
		}
		if h := r.accountHandler(p.Name.Space, p.Name.Local); h != nil {
			r.answer(ctx, iq, func() (*wire.Element, error) { return h(ctx, iq) })
			return
		}
		iq.To = r.domain
		r.answer(ctx, iq, func() (*wire.Element, error) { return r.serverIQCall(ctx, "", iq) })
	case r.isLocal(to) && to.Localpart() == "" && to.Resourcepart() == "":
		iq.To = to
		r.answer(ctx, iq, func() (*wire.Element, error) { return r.serverIQCall(ctx, "", iq) })
	case r.isService(to):
		iq.To = to
		r.answer(ctx, iq, func() (*wire.Element, error) { return r.serverIQCall(ctx, to.Domainpart(), iq) })
	case r.isLocal(to) && to.Localpart() != "" && to.Resourcepart() == "":
		iq.To = to
		if res != nil && to.Equal(from.Bare()) && p.Name.Space == ns.Roster && p.Name.Local == "query" {
			r.answer(ctx, iq, func() (*wire.Element, error) { return r.rosterIQ(ctx, res, iq) })
			return
		}
		r.answer(ctx, iq, func() (*wire.Element, error) {
			if ok, err := r.cfg.Store.UserExists(to.Localpart()); err != nil || !ok {
				return nil, host.ErrServiceUnavailable // RFC 6121 §8.5.1
			}
			h := r.accountHandler(p.Name.Space, p.Name.Local)
			if h == nil {
				return nil, host.ErrServiceUnavailable
			}
			return h(ctx, iq)
		})
	case r.isLocal(to):
		// Full JID of a local user (§8.5.3): deliver if connected.
		for _, rs := range r.resourcesOf(to.Localpart()) {
			if rs.jid.Resourcepart() == to.Resourcepart() {
				rs.sess.Send(marshal(el))
				r.inc("iq", "delivered")
				return
			}
		}
		r.bounce(ctx, el, host.ErrServiceUnavailable)
	default:
		if res == nil {
			r.bounce(ctx, el, host.ErrServiceUnavailable)
			return
		}
		r.toRemote(ctx, to, el)
	}
}

func (r *Router) serverIQCall(ctx context.Context, addr string, iq *host.IQ) (*wire.Element, error) {
	h := r.serverHandler(addr, iq.Payload.Name.Space, iq.Payload.Name.Local)
	if h == nil {
		return nil, host.ErrServiceUnavailable
	}
	return h(ctx, iq)
}

// answer runs a handler and sends its result or error to the requester.
func (r *Router) answer(ctx context.Context, iq *host.IQ, call func() (*wire.Element, error)) {
	payload, err := call()
	if err == errAnswered {
		return
	}
	if err != nil {
		se := host.AsStanzaError(err)
		if se == host.ErrInternal {
			r.cfg.Logger.Error("IQ handler failed", "ns", iq.Payload.Name.Space, "err", err)
		}
		r.bounce(ctx, iq.Stanza, se)
		return
	}
	res := wire.New(ns.Client, "iq").SetAttr("type", "result").SetAttr("id", iq.Stanza.Get("id")).SetAttr("to", iq.From.String())
	if iq.Stanza.Get("to") != "" {
		res.SetAttr("from", iq.Stanza.Get("to"))
	}
	res.Add(payload)
	r.inc("iq", "handled")
	r.deliverTo(ctx, iq.From, res)
}

// registerBuiltins registers the server's own handlers and disco entries.
func (r *Router) registerBuiltins() {
	r.AddIdentity("", host.Identity{Category: "server", Type: "im", Name: "xmppcheck reference server"})
	for _, f := range []string{ns.DiscoInfo, ns.DiscoItems, ns.Ping, ns.VCard} {
		r.AddFeature("", f)
	}
	if !r.cfg.Registration.Disabled {
		r.AddFeature("", ns.Register)
	}
	r.HandleIQ("", ns.DiscoInfo, "query", r.discoInfo)
	r.HandleIQ("", ns.DiscoItems, "query", r.discoItems)
	r.HandleIQ("", ns.Ping, "ping", pong)
	r.HandleIQ("", ns.Session, "session", pong) // RFC 3921 §3, kept for old clients
	r.HandleIQ("", ns.Register, "query", r.registerIQ)
	r.HandleAccountIQ(ns.DiscoInfo, "query", r.accountDiscoInfo)
	r.HandleAccountIQ(ns.DiscoItems, "query", r.accountDiscoItems)
	r.HandleAccountIQ(ns.Ping, "ping", pong)
	r.HandleAccountIQ(ns.VCard, "vCard", r.vcardIQ)
}

func pong(context.Context, *host.IQ) (*wire.Element, error) { return nil, nil }

// discoInfo answers XEP-0030 disco#info for the domain and for services.
func (r *Router) discoInfo(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	if iq.Type != "get" {
		return nil, host.ErrBadRequest
	}
	if iq.Payload.Get("node") != "" {
		return nil, host.ErrItemNotFound
	}
	addr := ""
	if r.isService(iq.To) {
		addr = iq.To.Domainpart()
	}
	return r.infoOf(addr), nil
}

func (r *Router) infoOf(addr string) *wire.Element {
	q := wire.New(ns.DiscoInfo, "query")
	r.mu.RLock()
	ids := slices.Clone(r.identities[addr])
	r.mu.RUnlock()
	for _, id := range ids {
		q.Add(wire.New(ns.DiscoInfo, "identity").SetAttr("category", id.Category).SetAttr("type", id.Type).SetAttr("name", id.Name))
	}
	for _, f := range r.Features(addr) {
		q.Add(wire.New(ns.DiscoInfo, "feature").SetAttr("var", f))
	}
	return q
}

func (r *Router) discoItems(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	if iq.Type != "get" {
		return nil, host.ErrBadRequest
	}
	if iq.Payload.Get("node") != "" {
		return nil, host.ErrItemNotFound
	}
	q := wire.New(ns.DiscoItems, "query")
	if r.isService(iq.To) {
		return q, nil
	}
	r.mu.RLock()
	items := slices.Clone(r.items)
	r.mu.RUnlock()
	for _, it := range items {
		q.Add(wire.New(ns.DiscoItems, "item").SetAttr("jid", it.JID).SetAttr("name", it.Name).SetAttr("node", it.Node))
	}
	return q, nil
}

// accountDiscoInfo: an account's identity (XEP-0030 §3.1, account/registered).
func (r *Router) accountDiscoInfo(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	if iq.Type != "get" || iq.Payload.Get("node") != "" {
		return nil, host.ErrItemNotFound
	}
	q := wire.New(ns.DiscoInfo, "query")
	q.Add(wire.New(ns.DiscoInfo, "identity").SetAttr("category", "account").SetAttr("type", "registered"))
	for _, f := range []string{ns.DiscoInfo, ns.DiscoItems, ns.Ping, ns.VCard} {
		q.Add(wire.New(ns.DiscoInfo, "feature").SetAttr("var", f))
	}
	return q, nil
}

func (r *Router) accountDiscoItems(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	if iq.Type != "get" || iq.Payload.Get("node") != "" {
		return nil, host.ErrItemNotFound
	}
	return wire.New(ns.DiscoItems, "query"), nil
}

// vcardIQ: XEP-0054 get (anyone, of an account) and set (own only).
func (r *Router) vcardIQ(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	owner := iq.To.Localpart()
	own := iq.Local && iq.From.Bare().Equal(iq.To.Bare())
	if iq.Type == "set" {
		if !own {
			return nil, host.ErrForbidden
		}
		b := iq.Payload.Append(nil, "")
		if len(b) > r.cfg.MaxVCard {
			return nil, host.Errorf(host.ErrTypeModify, "not-acceptable", "vCard larger than %d bytes", r.cfg.MaxVCard)
		}
		if len(iq.Payload.Children) == 0 {
			b = nil
		}
		return nil, r.cfg.Store.PutVCard(owner, b)
	}
	b, err := r.cfg.Store.VCard(owner)
	if err != nil {
		// XEP-0054 §3.1: no vCard, an empty one.
		return wire.New(ns.VCard, "vCard"), nil
	}
	el, err := wire.Parse(b, "")
	if err != nil {
		return nil, err
	}
	return el, nil
}
