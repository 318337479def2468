package xmppclient

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// SCRAMCache holds SCRAM clients by mechanism, user and password so that
// the keys derived from a password (PBKDF2, the costly part of a login) are
// computed once per salt and iteration count (RFC 5802 §5.1). Safe for
// concurrent use. The zero value is ready.
type SCRAMCache struct {
	m sync.Map // key -> *scram.Client
}

func (sc *SCRAMCache) client(mech string, h scram.HashGeneratorFcn, user, password string) (*scram.Client, error) {
	if sc == nil {
		return h.NewClient(user, password, "")
	}
	key := mech + "\x00" + user + "\x00" + password
	if v, ok := sc.m.Load(key); ok {
		return v.(*scram.Client), nil
	}
	cl, err := h.NewClient(user, password, "")
	if err != nil {
		return nil, err
	}
	v, _ := sc.m.LoadOrStore(key, cl)
	return v.(*scram.Client), nil
}

// Login authenticates and binds a resource: Authenticate then Bind.
func (c *Client) Login(ctx context.Context, user, password string) error {
	if err := c.Authenticate(ctx, user, password); err != nil {
		return err
	}
	_, err := c.Bind(ctx)
	return err
}

// Connect dials addr and logs in: Dial then Login.
func Connect(ctx context.Context, addr, user, password string, opts ...Option) (*Client, error) {
	c, err := Dial(ctx, addr, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Login(ctx, user, password); err != nil {
		c.Abort()
		return nil, err
	}
	return c, nil
}

// Authenticate runs SASL (RFC 6120 §6) with the first mechanism of the
// client's list that the server offers, then restarts the stream. A
// <failure/> is a *SASLError (errors.Is(err, SASLNotAuthorized), …); a
// server whose SCRAM signature does not verify is ErrServerSignature. After
// a SASL failure the stream stays open and Authenticate may be called again
// (RFC 6120 §6.4.5 lets the server allow retries).
func (c *Client) Authenticate(ctx context.Context, user, password string) error {
	if st := c.getState(); st != stateConnected {
		return fmt.Errorf("xmppclient: authenticate: %w", ErrState)
	}
	c.addSecret(password)
	f := c.Features()
	mech := ""
	for _, m := range c.cfg.mechanisms {
		if f.Offers(m) {
			mech = m
			break
		}
	}
	if mech == "" {
		return fmt.Errorf("xmppclient: authenticate: %w (server offers %v, client accepts %v)", ErrNoMechanism, f.Mechanisms, c.cfg.mechanisms)
	}
	t0 := time.Now()
	var err error
	switch {
	case mech == "PLAIN":
		err = c.authPlain(ctx, user, password)
	case strings.HasPrefix(mech, "SCRAM-"):
		err = c.authSCRAM(ctx, mech, user, password)
	default:
		err = fmt.Errorf("xmppclient: authenticate: mechanism %s not implemented: %w", mech, ErrNoMechanism)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.state = stateAuthenticated
	c.user = user
	c.mu.Unlock()
	// RFC 6120 §6.4.6: restart the stream on the same transport.
	if err := c.openStream(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.timings.Auth = time.Since(t0)
	c.mu.Unlock()
	return nil
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "=" // RFC 6120 §6.4.2: an empty response
	}
	return base64.StdEncoding.EncodeToString(b)
}

func (c *Client) sendSASL(ctx context.Context, elem, mech string, payload []byte) error {
	attr := ""
	if mech != "" {
		attr = " mechanism='" + escape(mech) + "'"
	}
	data := "<" + elem + " xmlns='" + ns.SASL + "'" + attr + ">" + b64(payload) + "</" + elem + ">"
	logged := "<" + elem + " xmlns='" + ns.SASL + "'" + attr + ">" + redacted + "</" + elem + ">"
	return c.write(ctx, []byte(data), []byte(logged))
}

// saslStep reads the server's next SASL element: a challenge (more=true),
// success (with its optional additional data) or failure.
func (c *Client) saslStep(ctx context.Context, mech string) (data []byte, success bool, err error) {
	el, err := c.readSync(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("xmppclient: authenticate: %w", err)
	}
	if el.Name.Space != ns.SASL {
		return nil, false, c.fail(fmt.Errorf("xmppclient: authenticate: unexpected <%s/>: %w", el.Name.Local, ErrProtocol))
	}
	switch el.Name.Local {
	case "challenge", "success":
		var v struct {
			Data string `xml:",chardata"`
		}
		if err := el.Decode(&v); err != nil {
			return nil, false, c.fail(fmt.Errorf("xmppclient: authenticate: %w", err))
		}
		s := strings.TrimSpace(v.Data)
		if s != "" && s != "=" {
			data, err = base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, false, c.fail(fmt.Errorf("xmppclient: authenticate: bad base64 from server: %w", ErrProtocol))
			}
		}
		return data, el.Name.Local == "success", nil
	case "failure":
		return nil, false, parseSASLFailure(el, mech)
	}
	return nil, false, c.fail(fmt.Errorf("xmppclient: authenticate: unexpected <%s/>: %w", el.Name.Local, ErrProtocol))
}

func parseSASLFailure(el Stanza, mech string) *SASLError {
	var v struct {
		Any []struct {
			XMLName xml.Name
			Lang    string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
			Data    string `xml:",chardata"`
		} `xml:",any"`
	}
	e := &SASLError{Mechanism: mech}
	_ = el.Decode(&v)
	for _, a := range v.Any {
		switch a.XMLName.Local {
		case "text":
			e.Text, e.Lang = a.Data, a.Lang
		default:
			switch cond := SASLCondition(a.XMLName.Local); cond {
			case SASLAborted, SASLAccountDisabled, SASLCredentialsExpired, SASLEncryptionRequired,
				SASLIncorrectEncoding, SASLInvalidAuthzid, SASLInvalidMechanism, SASLMalformedRequest,
				SASLMechanismTooWeak, SASLNotAuthorized, SASLTemporaryAuthFailure:
				e.Condition = cond
			default:
				e.Other = a.XMLName.Local
			}
		}
	}
	return e
}

// authPlain implements PLAIN (RFC 4616).
func (c *Client) authPlain(ctx context.Context, user, password string) error {
	if err := c.sendSASL(ctx, "auth", "PLAIN", []byte("\x00"+user+"\x00"+password)); err != nil {
		return err
	}
	_, success, err := c.saslStep(ctx, "PLAIN")
	if err != nil {
		return err
	}
	if !success {
		c.abortSASL(ctx)
		return c.fail(fmt.Errorf("xmppclient: authenticate: PLAIN: challenge from server: %w", ErrProtocol))
	}
	return nil
}

func (c *Client) abortSASL(ctx context.Context) {
	_ = c.write(ctx, []byte("<abort xmlns='"+ns.SASL+"'/>"), nil)
}

// authSCRAM implements SCRAM (RFC 5802, RFC 7677) and its -PLUS variants
// with channel binding (RFC 5929 tls-unique, RFC 9266 tls-exporter).
func (c *Client) authSCRAM(ctx context.Context, mech, user, password string) error {
	base := strings.TrimSuffix(mech, "-PLUS")
	plus := base != mech
	var h scram.HashGeneratorFcn
	switch base {
	case "SCRAM-SHA-1":
		h = scram.SHA1
	case "SCRAM-SHA-256":
		h = scram.SHA256
	case "SCRAM-SHA-512":
		h = scram.SHA512
	default:
		return fmt.Errorf("xmppclient: authenticate: %s: %w", mech, ErrNoMechanism)
	}
	cl, err := c.cfg.scramCache.client(base, h, user, password)
	if err != nil {
		return fmt.Errorf("xmppclient: authenticate: %s: %w", mech, err)
	}
	var conv *scram.ClientConversation
	switch {
	case plus:
		if c.tlsState == nil {
			return fmt.Errorf("xmppclient: authenticate: %s needs TLS: %w", mech, ErrNoMechanism)
		}
		var cb scram.ChannelBinding
		if c.tlsState.Version >= 0x0304 { // TLS 1.3: RFC 9266
			cb, err = scram.NewTLSExporterBinding(c.tlsState)
		} else {
			cb = scram.NewTLSUniqueBinding(c.tlsState.TLSUnique)
		}
		if err != nil {
			return fmt.Errorf("xmppclient: authenticate: channel binding: %w", err)
		}
		conv = cl.NewConversationWithChannelBinding(cb)
	case c.tlsState != nil && c.wantsPlus() && !c.serverOffersPlus():
		// RFC 5802 §6: we support channel binding, the server seems not to.
		conv = cl.NewConversationAdvertisingChannelBinding()
	default:
		conv = cl.NewConversation()
	}
	first, err := conv.Step("")
	if err != nil {
		return fmt.Errorf("xmppclient: authenticate: %s: %w", mech, err)
	}
	if err := c.sendSASL(ctx, "auth", mech, []byte(first)); err != nil {
		return err
	}
	for {
		data, success, err := c.saslStep(ctx, mech)
		if err != nil {
			return err
		}
		if success {
			if !conv.Done() && len(data) > 0 {
				if _, err := conv.Step(string(data)); err != nil {
					return c.fail(fmt.Errorf("xmppclient: authenticate: %s: %w: %w", mech, ErrServerSignature, err))
				}
			}
			if !conv.Valid() {
				// RFC 6120 §6.3.10: the server's final message must come
				// with <success/> or in a last challenge.
				return c.fail(fmt.Errorf("xmppclient: authenticate: %s: success without a valid server signature: %w", mech, ErrServerSignature))
			}
			return nil
		}
		if conv.Done() {
			// Final challenge already verified: answer it empty.
			if err := c.sendSASL(ctx, "response", "", nil); err != nil {
				return err
			}
			continue
		}
		resp, err := conv.Step(string(data))
		if err != nil {
			c.abortSASL(ctx)
			_, _, _ = c.saslStep(ctx, mech) // the server's <failure><aborted/></failure>
			if errors.Is(err, ErrProtocol) {
				return err
			}
			return c.fail(fmt.Errorf("xmppclient: authenticate: %s: %w: %w", mech, ErrServerSignature, err))
		}
		if err := c.sendSASL(ctx, "response", "", []byte(resp)); err != nil {
			return err
		}
	}
}

func (c *Client) wantsPlus() bool {
	for _, m := range c.cfg.mechanisms {
		if strings.HasSuffix(m, "-PLUS") {
			return true
		}
	}
	return false
}

func (c *Client) serverOffersPlus() bool {
	for _, m := range c.Features().Mechanisms {
		if strings.HasSuffix(m, "-PLUS") {
			return true
		}
	}
	return false
}

// Bind binds a resource (RFC 6120 §7) — the one from WithResource, or one
// the server picks — and, where the server requires it, establishes a
// session (RFC 3921 §3). It returns the full JID.
func (c *Client) Bind(ctx context.Context) (string, error) {
	if st := c.getState(); st != stateAuthenticated {
		return "", fmt.Errorf("xmppclient: bind: %w", ErrState)
	}
	t0 := time.Now()
	payload := "<bind xmlns='" + ns.Bind + "'/>"
	if c.cfg.resource != "" {
		payload = "<bind xmlns='" + ns.Bind + "'><resource>" + escape(c.cfg.resource) + "</resource></bind>"
	}
	el, err := c.iq(ctx, "set", "", payload, "")
	if err != nil {
		return "", fmt.Errorf("xmppclient: bind: %w", err)
	}
	var v struct {
		Bind struct {
			JID string `xml:"jid"`
		} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
	}
	if err := el.Decode(&v); err != nil || v.Bind.JID == "" {
		return "", c.fail(fmt.Errorf("xmppclient: bind: no jid in result: %w", ErrProtocol))
	}
	if f := c.Features(); f.Session && !f.SessionOptional {
		if _, err := c.iq(ctx, "set", "", "<session xmlns='"+ns.Session+"'/>", ""); err != nil {
			return "", fmt.Errorf("xmppclient: session: %w", err)
		}
	}
	c.mu.Lock()
	c.jid = strings.TrimSpace(v.Bind.JID)
	c.state = stateBound
	c.timings.Bind = time.Since(t0)
	c.mu.Unlock()
	return c.JID(), nil
}
