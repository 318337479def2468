package xmppclient

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// Stanza is one top-level element received on the stream: a message,
// presence or iq stanza, or (during negotiation) a stream-level element.
type Stanza struct {
	Name               xml.Name // namespace-resolved, e.g. {jabber:client message}
	Type, ID, From, To string   // the common attributes (RFC 6120 §8.1)
	Raw                string   // the element exactly as received

	tokens []xml.Token
}

// Decode unmarshals the element into v with encoding/xml (namespaces
// resolved as on the stream).
func (s Stanza) Decode(v any) error {
	return xml.NewTokenDecoder(&tokenSlice{toks: s.tokens}).Decode(v)
}

// Kind returns "message", "presence" or "iq" for stanzas, else the
// element's local name.
func (s Stanza) Kind() string { return s.Name.Local }

// Err returns the stanza's error as a *StanzaError if its type is "error",
// else nil (RFC 6120 §8.3).
func (s Stanza) Err() error {
	if s.Type != "error" {
		return nil
	}
	var ex struct {
		Error stanza.Error `xml:"error"`
	}
	e := &StanzaError{Kind: s.Name.Local, ID: s.ID, Raw: s.Raw}
	if err := s.Decode(&ex); err == nil {
		e.Type = ex.Error.Type
		e.Condition = ex.Error.Condition
		e.Text = ex.Error.Text[""]
		if e.Text == "" {
			for _, t := range ex.Error.Text {
				e.Text = t
				break
			}
		}
	}
	if e.Condition == "" {
		e.Condition = stanza.UndefinedCondition
	}
	return e
}

// Body returns the text of a message's <body/> (RFC 6121 §5.2.3).
func (s Stanza) Body() string {
	var m struct {
		Body []string `xml:"body"`
	}
	if s.Decode(&m) != nil || len(m.Body) == 0 {
		return ""
	}
	return m.Body[0]
}

type tokenSlice struct {
	toks []xml.Token
	i    int
}

func (t *tokenSlice) Token() (xml.Token, error) {
	if t.i >= len(t.toks) {
		return nil, io.EOF
	}
	tok := t.toks[t.i]
	t.i++
	return tok, nil
}

// Send writes raw XML (one or more complete stanzas) to the stream. The
// caller escapes what it builds; see Escape.
func (c *Client) Send(ctx context.Context, rawXML string) error {
	return c.write(ctx, []byte(rawXML), nil)
}

// SendElement marshals v with encoding/xml and writes it.
func (c *Client) SendElement(ctx context.Context, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return fmt.Errorf("xmppclient: send: %w", err)
	}
	return c.write(ctx, b, nil)
}

// Recv returns the next stanza that no request was waiting for (messages,
// presences, roster pushes, …), waiting until ctx ends. Without a deadline
// on ctx it waits at most the client's timeout. A timeout is ErrTimeout and
// leaves the client usable once the session is bound.
func (c *Client) Recv(ctx context.Context) (Stanza, error) {
	return c.RecvMatch(ctx, nil)
}

// RecvMatch is Recv for the first queued or arriving stanza for which match
// returns true; stanzas that do not match stay queued for later calls.
func (c *Client) RecvMatch(ctx context.Context, match func(Stanza) bool) (Stanza, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = c.opContext(ctx)
		defer cancel()
	}
	if c.getState() < stateBound {
		// Before a session exists, read synchronously.
		if s, ok, _ := c.popInbox(match, 0); ok {
			return s, nil
		}
		for {
			el, err := c.readSync(ctx)
			if err != nil {
				return Stanza{}, err
			}
			if match == nil || match(el) {
				return el, nil
			}
			c.pushInbox(el)
		}
	}
	if err := c.startReader(); err != nil {
		return Stanza{}, err
	}
	// Stanzas a look has tested are not tested again while waiting: only
	// those that arrived since (from) are.
	var from uint64
	for {
		s, ok, next := c.popInbox(match, from)
		if ok {
			return s, nil
		}
		from = next
		select {
		case <-c.inboxSig:
		case <-c.done:
			if s, ok, _ := c.popInbox(match, from); ok {
				return s, nil
			}
			return Stanza{}, c.Err()
		case <-ctx.Done():
			return Stanza{}, fmt.Errorf("xmppclient: recv: %w: %w", ErrTimeout, context.Cause(ctx))
		}
	}
}

func (c *Client) pushInbox(s Stanza) {
	c.mu.Lock()
	c.inbox.push(s)
	c.mu.Unlock()
	select {
	case c.inboxSig <- struct{}{}:
	default:
	}
}

// popInbox takes the first queued stanza from sequence number from on that
// match accepts; see inbox.take.
func (c *Client) popInbox(match func(Stanza) bool, from uint64) (Stanza, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inbox.take(match, from)
}

// IQ sends an iq of type typ ("get" or "set") to to ("" = the account's
// server) with the given inner XML, and waits for the response with the
// same id (RFC 6120 §8.2.3). An error response is returned as a
// *StanzaError, together with the stanza.
func (c *Client) IQ(ctx context.Context, typ, to, payload string) (Stanza, error) {
	return c.iq(ctx, typ, to, payload, "")
}

// iq is IQ with an alternative, redacted payload for the transcript.
func (c *Client) iq(ctx context.Context, typ, to, payload, logged string) (Stanza, error) {
	id := c.newID()
	var b strings.Builder
	b.WriteString("<iq type='" + escape(typ) + "' id='" + id + "'")
	if to != "" {
		b.WriteString(" to='" + escape(to) + "'")
	}
	b.WriteString(">")
	head := b.String()
	data := head + payload + "</iq>"
	var loggedB []byte
	if logged != "" {
		loggedB = []byte(head + logged + "</iq>")
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()

	if c.getState() < stateBound {
		if err := c.write(ctx, []byte(data), loggedB); err != nil {
			return Stanza{}, err
		}
		for {
			el, err := c.readSync(ctx)
			if err != nil {
				return Stanza{}, fmt.Errorf("xmppclient: iq %s: %w", id, err)
			}
			if el.Name.Local == "iq" && el.ID == id && (el.Type == "result" || el.Type == "error") {
				return el, el.Err()
			}
			c.pushInbox(el)
		}
	}
	if err := c.startReader(); err != nil {
		return Stanza{}, err
	}
	ch := make(chan Stanza, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.write(ctx, []byte(data), loggedB); err != nil {
		return Stanza{}, err
	}
	select {
	case el := <-ch:
		return el, el.Err()
	case <-c.done:
		select {
		case el := <-ch: // the response came just before the stream ended
			return el, el.Err()
		default:
		}
		return Stanza{}, fmt.Errorf("xmppclient: iq %s: %w", id, c.Err())
	case <-ctx.Done():
		return Stanza{}, fmt.Errorf("xmppclient: iq %s: %w: %w", id, ErrTimeout, context.Cause(ctx))
	}
}

// startReader starts the background reader of a bound session once.
func (c *Client) startReader() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.state == stateHijacked {
		return fmt.Errorf("xmppclient: %w: connection hijacked", ErrState)
	}
	if c.readerOn {
		return nil
	}
	c.readerOn = true
	go c.readLoop()
	return nil
}

// readLoop reads elements until the stream ends, routes iq responses to
// their waiters, answers the server's own requests, and queues the rest.
func (c *Client) readLoop() {
	defer close(c.done)
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.cfg.idleTimeout))
		el, err := c.readElement()
		if err != nil {
			var se *StreamError
			if !errors.As(err, &se) {
				err = c.netErr(context.Background(), err)
			}
			c.fail(err)
			c.log.Debug("reader stopped", "err", err)
			return
		}
		if el.Name.Local == "iq" {
			switch el.Type {
			case "result", "error":
				c.mu.Lock()
				ch := c.pending[el.ID]
				c.mu.Unlock()
				if ch != nil {
					select {
					case ch <- el:
					default: // a duplicate response: nobody waits for it
					}
					continue
				}
			case "get", "set":
				c.answerIQ(el)
				if el.Type == "set" {
					c.pushInbox(el) // roster pushes and the like are visible to Recv
				}
				continue
			}
		}
		c.pushInbox(el)
	}
}

// answerIQ replies to requests the server (or a peer) sends: XEP-0199 ping
// and roster pushes (RFC 6121 §2.1.6) with a result, anything else with
// service-unavailable (RFC 6120 §8.4).
func (c *Client) answerIQ(el Stanza) {
	var q struct {
		Any []struct{ XMLName xml.Name } `xml:",any"`
	}
	_ = el.Decode(&q)
	var space string
	if len(q.Any) > 0 {
		space = q.Any[0].XMLName.Space
	}
	to := ""
	if el.From != "" {
		to = " to='" + escape(el.From) + "'"
	}
	var reply string
	switch {
	case space == ns.Ping, space == ns.Roster && el.Type == "set":
		reply = "<iq type='result' id='" + escape(el.ID) + "'" + to + "/>"
	default:
		reply = "<iq type='error' id='" + escape(el.ID) + "'" + to + "><error type='cancel'><service-unavailable xmlns='" + ns.StanzaErrors + "'/></error></iq>"
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.timeout)
	defer cancel()
	_ = c.write(ctx, []byte(reply), nil)
}
