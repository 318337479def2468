package s2s

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"sync"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"github.com/xmppcheck/xmppcheck/spec"
)

// Component runs federation inside the reference server: it routes the
// server's stanzas to other domains (host.Remote) and delivers verified
// inbound stanzas through the host.
type Component struct {
	h    host.Host
	srv  *Server
	addr string

	mu sync.Mutex
	ln net.Listener
}

// NewComponent makes the s2s component of a reference server listening on
// addr: the server's certificate, the policy's tls.s2s-min-version floor, a
// dialback secret derived from the key file (stable across restarts), the
// server's logger. opts add to or override these (WithHost, …).
func NewComponent(h host.Host, addr string, opts ...Option) (*Component, error) {
	c := &Component{h: h, addr: addr}
	min := uint16(0)
	if cl, ok := h.Policy().Claim(spec.TLSS2SMinVersion); ok {
		min = cl.Params.TLSVersion("min")
	}
	base := []Option{
		WithCertificates(h.TLSConfig(min).Certificates...),
		WithPolicy(h.Policy()),
		WithDialbackSecret(h.Key("s2s dialback")),
		WithLogger(h.Logger()),
		WithDeliver(c.deliver),
	}
	srv, err := New(h.Domain(), append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	c.srv = srv
	return c, nil
}

// Server is the underlying s2s engine.
func (c *Component) Server() *Server { return c.srv }

// Start binds the s2s listener and becomes the server's remote router.
func (c *Component) Start(ctx context.Context) error {
	// Guarded by the server: EMFILE retried, per-address cap, and a slot of
	// the unauthenticated budget until the peer authenticates.
	ln, err := c.h.Listen("s2s", c.addr, true)
	if err != nil {
		return fmt.Errorf("s2s: listen: %w", err)
	}
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		if err := c.srv.Serve(ln); err != nil {
			c.h.Fail("s2s listener", err)
		}
	}()
	c.h.SetRemote(c)
	c.h.Logger().Info("s2s started", "domain", c.h.Domain(), "port", ln.Addr().(*net.TCPAddr).Port)
	return nil
}

// Route implements host.Remote: el (jabber:client) goes to domain's server.
func (c *Component) Route(ctx context.Context, domain string, el *wire.Element) error {
	// Written without its namespace: the stanza takes the stream's.
	var st Stanza
	var err error
	if el.Name.Space == ns.Client {
		st, err = stanzaFrom(el.Append(nil, ns.Client), xml.StartElement{
			Name: xml.Name{Local: el.Name.Local},
			Attr: []xml.Attr{{Name: xml.Name{Local: "from"}, Value: el.Get("from")}, {Name: xml.Name{Local: "to"}, Value: el.Get("to")},
				{Name: xml.Name{Local: "type"}, Value: el.Get("type")}, {Name: xml.Name{Local: "id"}, Value: el.Get("id")}},
		})
	} else {
		st, err = ParseStanza(el.Append(nil, ns.Client))
	}
	if err != nil {
		return host.ErrBadRequest
	}
	if err := c.srv.Send(ctx, st); err != nil {
		if errors.Is(err, ErrQueueFull) {
			return &host.StanzaError{Type: host.ErrTypeWait, Condition: string(stanza.ResourceConstraint), Text: "too many stanzas waiting for " + domain}
		}
		return &host.StanzaError{Type: host.ErrTypeCancel, Condition: string(stanza.RemoteServerNotFound), Text: err.Error()}
	}
	return nil
}

// deliver hands an inbound stanza, or a bounce of ours, to local delivery;
// what local delivery refuses goes back to the remote sender as an error.
func (c *Component) deliver(ctx context.Context, st Stanza) {
	el := st.elem
	if el != nil {
		el.Rename(ns.Server, ns.Client)
	} else {
		var err error
		if el, err = wire.Parse(st.Raw, ns.Client); err != nil {
			c.h.Logger().Warn("s2s: inbound stanza does not parse", "err", err)
			return
		}
	}
	err := c.h.DeliverRemote(ctx, el)
	if err == nil || !st.bounceable() || c.srv.isLocal(st.From.Domainpart()) {
		return
	}
	se := host.AsStanzaError(err)
	if err := c.srv.Send(ctx, Bounce(st, stanza.Condition(se.Condition), se.Text)); err != nil {
		c.h.Logger().Debug("s2s: bounce not sent", "err", err)
	}
}

// Addr is the s2s listener's address.
func (c *Component) Addr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln == nil {
		return nil
	}
	return c.ln.Addr()
}

// Close ends every stream.
func (c *Component) Close() error { return c.srv.Close() }
