package im

import (
	"context"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// DeliverRemote delivers a stanza from another server to local recipients.
func (r *Router) DeliverRemote(ctx context.Context, el *wire.Element) error {
	from, err := jid.Parse(el.Get("from"))
	if err != nil || r.isLocal(from) {
		return host.Errorf(host.ErrTypeModify, "jid-malformed", "invalid 'from'")
	}
	to, err := jid.Parse(el.Get("to"))
	if err != nil {
		return host.Errorf(host.ErrTypeModify, "jid-malformed", "invalid 'to'")
	}
	if !r.isLocal(to) && !r.isService(to) {
		return host.Errorf(host.ErrTypeCancel, "item-not-found", "this server does not serve %s", to.Domainpart())
	}
	switch el.Name.Local {
	case "message":
		r.routeMessage(ctx, from, el, false)
	case "presence":
		if to.Localpart() == "" {
			return nil
		}
		r.inboundPresence(ctx, from, to, el)
	case "iq":
		r.routeIQ(ctx, from, el, nil)
	default:
		return host.ErrBadRequest
	}
	return nil
}
