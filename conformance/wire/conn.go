package wire

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// Errors a probe reports. They are wrapped with what was being done.
var (
	// ErrNoResponse: the peer accepted the connection and sent nothing
	// before the deadline.
	ErrNoResponse = errors.New("wire: no response before the deadline")
	// ErrProtocol: the peer sent something that is not the XMPP it should.
	ErrProtocol = errors.New("wire: protocol violation")
	// ErrStreamError: the peer closed the stream with a stream error.
	ErrStreamError = errors.New("wire: stream error")
	// ErrAuthFailed: SASL failure.
	ErrAuthFailed = errors.New("wire: authentication failed")
	// ErrNoStartTLS: the server did not offer STARTTLS.
	ErrNoStartTLS = errors.New("wire: STARTTLS not offered")
	// ErrClosed: the server ended the stream (</stream:stream>, RFC 6120
	// §4.4) or closed the TCP connection, without a stream error.
	ErrClosed = errors.New("wire: the server closed the stream")
	// ErrTooLarge: the peer sent more than the read bound in one element
	// (text runs, attributes and children included), stream header or
	// whitespace run (reported with ErrProtocol).
	ErrTooLarge = errors.New("wire: the peer sent more than the read bound")
)

// DefaultMaxElementSize is the read bound of WithMaxElementSize.
const DefaultMaxElementSize = 1 << 20

// MaxTags bounds the tags ('<') read for one top-level element, and
// MaxDepth their nesting: each decoded child, and each level of nesting,
// costs memory well beyond its bytes; what the suite reads (features, SASL,
// IQ results) needs far fewer.
const (
	MaxTags  = 1 << 12
	MaxDepth = 256
)

// Option configures Dial.
type Option func(*config)

type config struct {
	ns         string
	from       string
	local      netip.Addr
	timeout    time.Duration
	transcript *Transcript
	directTLS  *tls.Config
	maxRead    int
}

// WithServerStream opens a server-to-server stream (jabber:server) with the
// given sending domain.
func WithServerStream(from string) Option {
	return func(c *config) { c.ns, c.from = ns.Server, from }
}

// WithLocalAddr binds the client side to a local address (a 127.x.y.z on
// loopback), so the server sees a known, distinctive client address.
func WithLocalAddr(a netip.Addr) Option { return func(c *config) { c.local = a } }

// WithTimeout bounds every single read and write (default 10s) within the
// context's deadline.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithMaxElementSize bounds the bytes read for one top-level element, the
// stream header or a whitespace run (default DefaultMaxElementSize): a
// hostile peer then ends in an error, not in unbounded memory.
func WithMaxElementSize(n int) Option { return func(c *config) { c.maxRead = n } }

// WithTranscript records the session into t.
func WithTranscript(t *Transcript) Option { return func(c *config) { c.transcript = t } }

// WithDirectTLS starts TLS immediately after connecting (XEP-0368).
func WithDirectTLS(cfg *tls.Config) Option { return func(c *config) { c.directTLS = cfg } }

// TLSConfig returns a probe TLS configuration pinned to exactly version v.
// Certificates are not verified: the probe tests protocol versions, not
// the PKI. Versions below TLS 1.2 get every cipher suite Go implements,
// insecure ones included, so that the probe really offers them.
func TLSConfig(serverName string, v uint16) *tls.Config {
	c := &tls.Config{ServerName: serverName, MinVersion: v, MaxVersion: v, InsecureSkipVerify: true} //nolint:gosec // probing versions, not PKI
	if v < tls.VersionTLS12 {
		for _, s := range tls.CipherSuites() {
			c.CipherSuites = append(c.CipherSuites, s.ID)
		}
		for _, s := range tls.InsecureCipherSuites() {
			c.CipherSuites = append(c.CipherSuites, s.ID)
		}
	}
	return c
}

// Conn is an XMPP stream opened by a probe.
type Conn struct {
	cfg      config
	domain   string
	raw      net.Conn
	conn     net.Conn // raw or the TLS layer over it
	dec      *xml.Decoder
	Features Element
	// StreamID is the id the server gave the current stream.
	StreamID string
	// TLSState is set once TLS is up.
	TLSState *tls.ConnectionState
	queue    []Element
	nread    int // bytes read since the current top-level element began
	ntags    int // '<' among them
	depth    int // open tags among them (counted on the bytes, roughly)
	prev     byte
	jid      string
	stop     func() bool
}

// Dial connects to addr and opens a stream to domain, reading the
// server's stream header and features.
func Dial(ctx context.Context, addr, domain string, opts ...Option) (*Conn, error) {
	cfg := config{ns: ns.Client, timeout: 10 * time.Second, maxRead: DefaultMaxElementSize}
	for _, o := range opts {
		o(&cfg)
	}
	d := net.Dialer{Timeout: cfg.timeout}
	if cfg.local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.local.AsSlice()}
	}
	cfg.transcript.Notef("connect %s (stream to %s)", addr, domain)
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wire: connect %s: %w", addr, err)
	}
	c := &Conn{cfg: cfg, domain: domain, raw: raw, conn: raw}
	// Cancelling ctx unblocks any read or write at once.
	c.stop = context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	if cfg.directTLS != nil {
		if err := c.handshake(ctx, cfg.directTLS); err != nil {
			c.stop()
			raw.Close()
			return nil, err
		}
	}
	if err := c.open(ctx); err != nil {
		c.stop()
		raw.Close()
		if c.TLSState != nil {
			return nil, &AfterTLSError{State: *c.TLSState, Err: err}
		}
		return nil, err
	}
	return c, nil
}

// LocalAddr is the client's address as the kernel bound it.
func (c *Conn) LocalAddr() netip.AddrPort {
	ap, _ := netip.ParseAddrPort(c.raw.LocalAddr().String())
	return ap
}

// JID is the full JID bound by Bind.
func (c *Conn) JID() string { return c.jid }

// Close ends the stream and closes the connection.
func (c *Conn) Close() error {
	if c.stop != nil {
		c.stop()
	}
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c.conn, "</stream:stream>")
	c.cfg.transcript.Record("C", "</stream:stream>")
	return c.conn.Close()
}

func (c *Conn) deadline(ctx context.Context) time.Time {
	dl := time.Now().Add(c.cfg.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	return dl
}

// Send writes raw XML.
func (c *Conn) Send(ctx context.Context, s string) error {
	return c.send(ctx, s, s)
}

// send writes s, recording shown in the transcript instead.
func (c *Conn) send(ctx context.Context, s, shown string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wire: send: %w", err)
	}
	c.conn.SetWriteDeadline(c.deadline(ctx))
	c.cfg.transcript.Record("C", shown)
	if _, err := io.WriteString(c.conn, s); err != nil {
		return fmt.Errorf("wire: send: %w", c.classify(ctx, err))
	}
	return nil
}

// classify turns deadline errors into ErrNoResponse and context errors
// into the context's error.
func (c *Conn) classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrNoResponse, ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (%s)", ErrNoResponse, c.cfg.timeout)
	}
	return err
}

type recorder struct {
	c *Conn
	r io.Reader
}

func (r recorder) Read(p []byte) (int, error) {
	if m := r.c.cfg.maxRead; m > 0 {
		left := m - r.c.nread
		if left <= 0 {
			return 0, fmt.Errorf("%w: %w: more than %d bytes in one element, header or whitespace run", ErrProtocol, ErrTooLarge, m)
		}
		if r.c.ntags > MaxTags || r.c.depth > MaxDepth+1 {
			return 0, fmt.Errorf("%w: %w: more than %d tags or deeper than %d in one element", ErrProtocol, ErrTooLarge, MaxTags, MaxDepth)
		}
		p = p[:min(len(p), left)]
	}
	n, err := r.r.Read(p)
	r.c.nread += n
	r.c.ntags += bytes.Count(p[:n], []byte{'<'})
	for _, b := range p[:n] {
		switch {
		case r.c.prev == '<' && b == '/', r.c.prev == '/' && b == '>':
			r.c.depth--
		case r.c.prev == '<' && b != '?' && b != '!':
			r.c.depth++
		}
		r.c.prev = b
	}
	if n > 0 {
		r.c.cfg.transcript.Record("S", string(p[:n]))
	}
	return n, err
}

func (c *Conn) open(ctx context.Context) error {
	c.nread, c.ntags, c.depth = 0, 0, 0
	c.dec = xml.NewDecoder(recorder{c, c.conn})
	c.dec.Strict = true
	from := ""
	if c.cfg.from != "" {
		from = fmt.Sprintf(" from='%s'", c.cfg.from)
	}
	extra := ""
	if c.cfg.ns == ns.Server {
		extra = " xmlns:db='" + ns.Dialback + "'"
	}
	hdr := fmt.Sprintf("<?xml version='1.0'?><stream:stream to='%s'%s version='1.0' xml:lang='en' xmlns='%s' xmlns:stream='%s'%s>",
		c.domain, from, c.cfg.ns, ns.Stream, extra)
	if err := c.Send(ctx, hdr); err != nil {
		return err
	}
	// RFC 6120 §4.2: the response stream header, then §4.3.2 features.
	for {
		tok, err := c.token(ctx)
		if err != nil {
			return fmt.Errorf("wire: stream header: %w", err)
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.CharData, xml.Comment:
			if cd, ok := t.(xml.CharData); ok && len(strings.TrimSpace(string(cd))) > 0 {
				return fmt.Errorf("wire: stream header: %w: text %q before the stream", ErrProtocol, clip(string(cd)))
			}
			continue
		case xml.StartElement:
			if t.Name.Space != ns.Stream || t.Name.Local != "stream" {
				return fmt.Errorf("wire: stream header: %w: got <%s xmlns='%s'>, want <stream:stream>", ErrProtocol, t.Name.Local, t.Name.Space)
			}
			for _, a := range t.Attr {
				if a.Name.Local == "id" {
					c.StreamID = a.Value
				}
			}
		default:
			return fmt.Errorf("wire: stream header: %w: unexpected %T", ErrProtocol, tok)
		}
		break
	}
	el, err := c.Next(ctx)
	if err != nil {
		return fmt.Errorf("wire: features: %w", err)
	}
	if el.XMLName.Space != ns.Stream || el.XMLName.Local != "features" {
		return fmt.Errorf("wire: features: %w: got <%s>", ErrProtocol, el.XMLName.Local)
	}
	c.Features = el
	return nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func (c *Conn) token(ctx context.Context) (xml.Token, error) {
	c.conn.SetReadDeadline(c.deadline(ctx))
	tok, err := c.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: connection closed by the server", ErrClosed)
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: not XML: %v", ErrProtocol, se)
		}
		return nil, c.classify(ctx, err)
	}
	return tok, nil
}

// Next reads the next top-level element (stanza or nonza). A stream error
// or the end of the stream is returned as an error.
func (c *Conn) Next(ctx context.Context) (Element, error) {
	if len(c.queue) > 0 {
		el := c.queue[0]
		c.queue = c.queue[1:]
		return el, nil
	}
	c.nread, c.ntags = 0, 0
	for {
		tok, err := c.token(ctx)
		if err != nil {
			return Element{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var el Element
			c.conn.SetReadDeadline(c.deadline(ctx))
			if err := c.dec.DecodeElement(&el, &t); err != nil {
				if errors.Is(err, ErrTooLarge) {
					return Element{}, err
				}
				return Element{}, fmt.Errorf("%w: %v", ErrProtocol, c.classify(ctx, err))
			}
			if el.XMLName.Space == ns.Stream && el.XMLName.Local == "error" {
				return el, fmt.Errorf("%w: %s", ErrStreamError, el.Condition())
			}
			return el, nil
		case xml.EndElement:
			return Element{}, fmt.Errorf("%w: </stream:stream>", ErrClosed)
		}
	}
}

// StartTLS negotiates STARTTLS (RFC 6120 §5.4) and restarts the stream.
func (c *Conn) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if _, ok := c.Features.Child(ns.TLS, "starttls"); !ok {
		return ErrNoStartTLS
	}
	if err := c.Send(ctx, "<starttls xmlns='"+ns.TLS+"'/>"); err != nil {
		return err
	}
	el, err := c.Next(ctx)
	if err != nil {
		return fmt.Errorf("wire: starttls: %w", err)
	}
	if el.XMLName.Local != "proceed" {
		return fmt.Errorf("wire: starttls: %w: got <%s>", ErrProtocol, el.XMLName.Local)
	}
	if err := c.handshake(ctx, cfg); err != nil {
		return err
	}
	if err := c.open(ctx); err != nil {
		return &AfterTLSError{State: *c.TLSState, Err: err}
	}
	return nil
}

// TLSError is a failed TLS handshake.
type TLSError struct {
	Err error
	// ServerBytes is how many bytes the server sent during the
	// handshake: 0 means it sent nothing at all (no ServerHello, no
	// alert) before the error.
	ServerBytes int64
}

func (e *TLSError) Error() string { return "wire: TLS handshake: " + e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

// AfterTLSError is a failure after a TLS handshake that completed: the
// stream reopened over TLS (RFC 6120 §5.4.3.3) was refused or broke. The
// handshake itself, and the version it negotiated (State), stand; what
// the server said afterwards is a separate matter (an s2s peer without a
// valid certificate refused with <not-authorized/>, say).
type AfterTLSError struct {
	State tls.ConnectionState
	Err   error
}

func (e *AfterTLSError) Error() string {
	return "wire: after a completed " + tls.VersionName(e.State.Version) + " handshake: " + e.Err.Error()
}
func (e *AfterTLSError) Unwrap() error { return e.Err }

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	*c.n += int64(n)
	return n, err
}

func (c *Conn) handshake(ctx context.Context, cfg *tls.Config) error {
	var got int64
	tc := tls.Client(countingConn{c.raw, &got}, cfg)
	c.raw.SetDeadline(c.deadline(ctx))
	c.cfg.transcript.Notef("TLS handshake offering %s", versionRange(cfg))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.cfg.transcript.Notef("TLS handshake failed after %d byte(s) from the server: %v", got, err)
		return &TLSError{Err: c.classify(ctx, err), ServerBytes: got}
	}
	c.raw.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.TLSState = &st
	c.cfg.transcript.Notef("TLS up: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	c.conn = tc
	return nil
}

func versionRange(cfg *tls.Config) string {
	if cfg.MinVersion == cfg.MaxVersion && cfg.MinVersion != 0 {
		return "only " + tls.VersionName(cfg.MinVersion)
	}
	return tls.VersionName(max(cfg.MinVersion, tls.VersionTLS12)) + "…" + tls.VersionName(max(cfg.MaxVersion, tls.VersionTLS13))
}

// Mechanisms lists the SASL mechanisms offered in the current features.
func (c *Conn) Mechanisms() []string {
	m, ok := c.Features.Child(ns.SASL, "mechanisms")
	if !ok {
		return nil
	}
	var out []string
	for _, ch := range m.Children {
		if ch.XMLName.Local == "mechanism" {
			out = append(out, strings.TrimSpace(ch.Text))
		}
	}
	return out
}

// SASLFailure is a SASL <failure/> with its condition (RFC 6120 §6.5).
type SASLFailure struct{ Condition string }

func (e *SASLFailure) Error() string { return "wire: SASL failure: " + e.Condition }
func (e *SASLFailure) Unwrap() error { return ErrAuthFailed }

// AuthPlain authenticates with SASL PLAIN (RFC 4616) and restarts the stream.
func (c *Conn) AuthPlain(ctx context.Context, user, password string) error {
	c.cfg.transcript.AddSecret(password)
	payload := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if err := c.send(ctx, "<auth xmlns='"+ns.SASL+"' mechanism='PLAIN'>"+payload+"</auth>",
		"<auth xmlns='"+ns.SASL+"' mechanism='PLAIN'>[redacted]</auth>"); err != nil {
		return err
	}
	return c.saslResult(ctx, nil)
}

// AuthSCRAM authenticates with SCRAM-SHA-1 or SCRAM-SHA-256 (RFC 5802,
// RFC 7677) and restarts the stream.
func (c *Conn) AuthSCRAM(ctx context.Context, mech, user, password string) error {
	c.cfg.transcript.AddSecret(password)
	var hg scram.HashGeneratorFcn
	switch mech {
	case "SCRAM-SHA-1":
		hg = scram.SHA1
	case "SCRAM-SHA-256":
		hg = scram.SHA256
	case "SCRAM-SHA-512":
		hg = scram.SHA512
	default:
		return fmt.Errorf("wire: unsupported mechanism %s", mech)
	}
	cl, err := hg.NewClient(user, password, "")
	if err != nil {
		return fmt.Errorf("wire: scram: %w", err)
	}
	conv := cl.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return fmt.Errorf("wire: scram: %w", err)
	}
	if err := c.send(ctx, "<auth xmlns='"+ns.SASL+"' mechanism='"+mech+"'>"+base64.StdEncoding.EncodeToString([]byte(first))+"</auth>",
		"<auth xmlns='"+ns.SASL+"' mechanism='"+mech+"'>[redacted]</auth>"); err != nil {
		return err
	}
	return c.saslResult(ctx, conv)
}

func (c *Conn) saslResult(ctx context.Context, conv *scram.ClientConversation) error {
	for {
		el, err := c.Next(ctx)
		if err != nil {
			return fmt.Errorf("wire: sasl: %w", err)
		}
		switch el.XMLName.Local {
		case "challenge":
			if conv == nil {
				return fmt.Errorf("wire: sasl: %w: unexpected challenge", ErrProtocol)
			}
			ch, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text))
			if err != nil {
				return fmt.Errorf("wire: sasl: %w: challenge not base64", ErrProtocol)
			}
			resp, err := conv.Step(string(ch))
			if err != nil {
				return fmt.Errorf("wire: sasl: scram: %w", err)
			}
			if err := c.send(ctx, "<response xmlns='"+ns.SASL+"'>"+base64.StdEncoding.EncodeToString([]byte(resp))+"</response>",
				"<response xmlns='"+ns.SASL+"'>[redacted]</response>"); err != nil {
				return err
			}
		case "success":
			if conv != nil && strings.TrimSpace(el.Text) != "" {
				fin, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text))
				if err == nil {
					if _, err := conv.Step(string(fin)); err != nil || !conv.Valid() {
						return fmt.Errorf("wire: sasl: %w: server signature invalid", ErrProtocol)
					}
				}
			}
			return c.open(ctx)
		case "failure":
			cond := "unknown"
			for _, ch := range el.Children {
				if ch.XMLName.Local != "text" {
					cond = ch.XMLName.Local
				}
			}
			return &SASLFailure{Condition: cond}
		default:
			return fmt.Errorf("wire: sasl: %w: got <%s>", ErrProtocol, el.XMLName.Local)
		}
	}
}

// Bind binds a resource (RFC 6120 §7) and returns the full JID.
func (c *Conn) Bind(ctx context.Context, resource string) (string, error) {
	res, err := c.IQ(ctx, "set", "", "<bind xmlns='"+ns.Bind+"'><resource>"+resource+"</resource></bind>")
	if err != nil {
		return "", fmt.Errorf("wire: bind: %w", err)
	}
	b, _ := res.Child(ns.Bind, "bind")
	j, _ := b.Child(ns.Bind, "jid")
	c.jid = strings.TrimSpace(j.Text)
	return c.jid, nil
}

// StanzaError is an IQ of type error (RFC 6120 §8.3).
type StanzaError struct {
	Type      string
	Condition string
}

func (e *StanzaError) Error() string { return "wire: stanza error: " + e.Type + "/" + e.Condition }

// NewID returns a random stanza id.
func NewID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// IQ sends an IQ with payload and waits for its result; other stanzas read
// meanwhile are queued for Next. An error response is a *StanzaError.
func (c *Conn) IQ(ctx context.Context, typ, to, payload string) (Element, error) {
	id := NewID()
	toAttr := ""
	if to != "" {
		toAttr = " to='" + xmppclient.Escape(to) + "'"
	}
	if err := c.Send(ctx, fmt.Sprintf("<iq type='%s' id='%s'%s>%s</iq>", typ, id, toAttr, payload)); err != nil {
		return Element{}, err
	}
	var held []Element
	defer func() { c.queue = append(held, c.queue...) }()
	for {
		el, err := c.Next(ctx)
		if err != nil {
			return Element{}, err
		}
		if el.XMLName.Local == "iq" && el.Attr("id") == id {
			if el.Attr("type") == "error" {
				return el, el.StanzaErr()
			}
			return el, nil
		}
		held = append(held, el)
	}
}

// Element is a generic XML element.
type Element struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []Element  `xml:",any"`
	Text     string     `xml:",chardata"`
}

// Attr returns the value of the attribute with the given local name.
func (e Element) Attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child with the namespace (any when "") and name.
func (e Element) Child(space, local string) (Element, bool) {
	for _, ch := range e.Children {
		if ch.XMLName.Local == local && (space == "" || ch.XMLName.Space == space) {
			return ch, true
		}
	}
	return Element{}, false
}

// Find returns the first descendant with the namespace and name.
func (e Element) Find(space, local string) (Element, bool) {
	for _, ch := range e.Children {
		if ch.XMLName.Local == local && (space == "" || ch.XMLName.Space == space) {
			return ch, true
		}
		if d, ok := ch.Find(space, local); ok {
			return d, true
		}
	}
	return Element{}, false
}

// Condition returns the name of the first child that is not <text/>
// (the defined condition of a stream or stanza error).
func (e Element) Condition() string {
	for _, ch := range e.Children {
		if ch.XMLName.Local != "text" {
			return ch.XMLName.Local
		}
	}
	return "undefined-condition"
}

// StanzaErr returns the stanza error of an error stanza.
func (e Element) StanzaErr() *StanzaError {
	er, ok := e.Child("", "error")
	if !ok {
		return &StanzaError{Type: "unknown", Condition: "undefined-condition"}
	}
	return &StanzaError{Type: er.Attr("type"), Condition: er.Condition()}
}
