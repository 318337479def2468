package xmppclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// connIDs numbers connections for logs and transcripts.
var connIDs atomic.Uint64

type state int

const (
	stateConnected state = iota // stream open, not authenticated
	stateAuthenticated
	stateBound
	stateHijacked
	stateClosed
)

// Features are the stream features the server announced last (RFC 6120 §4.3.2).
type Features struct {
	StartTLS         bool
	StartTLSRequired bool
	Mechanisms       []string // SASL mechanisms, as offered
	ChannelBindings  []string // XEP-0440 channel-binding types, if announced
	Register         bool     // XEP-0077 in-band registration stream feature
	Bind             bool
	Session          bool // RFC 3921 session establishment announced
	SessionOptional  bool
	Raw              string // the <stream:features/> element as received
}

// Offers reports whether the server offers the SASL mechanism name.
func (f Features) Offers(name string) bool {
	for _, m := range f.Mechanisms {
		if m == name {
			return true
		}
	}
	return false
}

// Timings are the durations of the steps of connecting and logging in; the
// load generator reports them separately.
type Timings struct {
	Connect time.Duration // TCP connect
	TLS     time.Duration // TLS handshake (STARTTLS: from <starttls/> to the end of the handshake)
	Stream  time.Duration // stream headers and features, summed over restarts before auth
	Auth    time.Duration // SASL exchange and stream restart
	Bind    time.Duration // resource binding (and session, if required)
}

// Client is one XMPP client-to-server connection. Its methods are safe for
// concurrent use; reads are done by one background reader once the session
// is bound, and synchronously before that.
type Client struct {
	cfg  config
	id   uint64
	log  *slog.Logger
	addr string

	conn     net.Conn // current transport (TCP or TLS)
	tlsState *tls.ConnectionState
	br       *bufio.Reader
	rr       *recReader
	dec      *xml.Decoder

	mu       sync.Mutex // guards the fields below
	state    state
	features Features
	streamID string
	jid      string
	user     string
	timings  Timings
	secrets  []string
	err      error // sticky: why the connection is unusable

	wmu sync.Mutex // serialises writes
	tmu sync.Mutex // serialises transcript lines

	nextID atomic.Uint64

	// Set once the background reader runs.
	readerOn bool
	pending  map[string]chan Stanza
	inbox    inbox
	inboxSig chan struct{}
	done     chan struct{}
}

// Dial connects to the c2s address addr (host:port), secures the stream as
// configured (STARTTLS by default) and returns a client that is ready to
// register or authenticate. The server's stream features are in Features().
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := config{timeout: DefaultTimeout, idleTimeout: DefaultIdleTimeout, lang: "en", maxElement: DefaultMaxElementSize}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.domain == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("xmppclient: dial: %w", err)
		}
		if net.ParseIP(host) != nil || host == "" {
			host = "localhost"
		}
		cfg.domain = host
	}
	if len(cfg.mechanisms) == 0 {
		cfg.mechanisms = DefaultMechanisms
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:      cfg,
		id:       connIDs.Add(1),
		addr:     addr,
		pending:  make(map[string]chan Stanza),
		inboxSig: make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	c.log = cfg.logger.With("conn", c.id)
	if err := c.dial(ctx); err != nil {
		if c.conn != nil {
			c.conn.Close()
		}
		c.setState(stateClosed)
		return nil, err
	}
	return c, nil
}

func (c *Client) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: c.cfg.timeout}
	if c.cfg.localAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.cfg.localAddr.AsSlice()}
	}
	t0 := time.Now()
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("xmppclient: dial %s: %w", c.addr, err)
	}
	c.timings.Connect = time.Since(t0)
	c.conn = conn
	c.log.Debug("connected", "local", conn.LocalAddr().String(), "remote", c.addr)

	if c.cfg.tlsMode == DirectTLS {
		// XEP-0368 §3: TLS first, ALPN "xmpp-client".
		if err := c.handshake(ctx, []string{"xmpp-client"}); err != nil {
			return err
		}
	} else {
		c.setReader(conn)
	}
	if err := c.openStream(ctx); err != nil {
		return err
	}
	if c.cfg.tlsMode != StartTLS {
		return nil
	}
	if !c.features.StartTLS {
		return fmt.Errorf("xmppclient: dial: %w", ErrNoStartTLS)
	}
	// RFC 6120 §5.4.2
	t1 := time.Now()
	if err := c.write(ctx, []byte(`<starttls xmlns='`+ns.TLS+`'/>`), nil); err != nil {
		return err
	}
	el, err := c.readSync(ctx)
	if err != nil {
		return fmt.Errorf("xmppclient: starttls: %w", err)
	}
	switch {
	case el.Name.Space == ns.TLS && el.Name.Local == "proceed":
	case el.Name.Space == ns.TLS && el.Name.Local == "failure":
		return fmt.Errorf("xmppclient: starttls: %w", ErrTLSRefused)
	default:
		return fmt.Errorf("xmppclient: starttls: unexpected <%s/>: %w", el.Name.Local, ErrProtocol)
	}
	if err := c.handshake(ctx, nil); err != nil {
		return err
	}
	c.timings.TLS = time.Since(t1)
	return c.openStream(ctx)
}

func (c *Client) tlsConfig(alpn []string) *tls.Config {
	var tc *tls.Config
	if c.cfg.tlsConfig != nil {
		tc = c.cfg.tlsConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = c.cfg.serverName
		if tc.ServerName == "" {
			tc.ServerName = c.cfg.domain
		}
	}
	if c.cfg.minVersion != 0 {
		tc.MinVersion = c.cfg.minVersion
	}
	if c.cfg.maxVersion != 0 {
		tc.MaxVersion = c.cfg.maxVersion
	}
	if c.cfg.insecure {
		tc.InsecureSkipVerify = true
	}
	if c.cfg.roots != nil {
		tc.RootCAs = c.cfg.roots
	}
	if alpn != nil && tc.NextProtos == nil {
		tc.NextProtos = alpn
	}
	return tc
}

func (c *Client) handshake(ctx context.Context, alpn []string) error {
	t0 := time.Now()
	tc := tls.Client(c.conn, c.tlsConfig(alpn))
	hctx, cancel := c.opContext(ctx)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("xmppclient: tls handshake: %w", c.netErr(hctx, err))
	}
	if c.cfg.tlsMode == DirectTLS {
		c.timings.TLS = time.Since(t0)
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	c.conn = tc
	c.setReader(tc)
	c.log.Debug("tls established", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	return nil
}

func (c *Client) setReader(r io.Reader) {
	c.br = bufio.NewReaderSize(r, 4096)
	c.rr = &recReader{br: c.br, max: c.cfg.maxElement}
}

// openStream sends a stream header, reads the server's and its features
// (RFC 6120 §4.2, §4.3).
func (c *Client) openStream(ctx context.Context) error {
	t0 := time.Now()
	hdr := fmt.Sprintf(`<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='%s' xmlns='%s' xmlns:stream='%s'>`,
		escape(c.cfg.domain), escape(c.cfg.lang), ns.Client, ns.Stream)
	if err := c.write(ctx, []byte(hdr), nil); err != nil {
		return err
	}
	c.dec = xml.NewDecoder(c.rr)
	rctx, cancel := c.opContext(ctx)
	defer cancel()
	stop := c.watch(rctx)
	defer stop()
	c.rr.reset()
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return c.fail(fmt.Errorf("xmppclient: stream header: %w", c.netErr(rctx, err)))
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.CharData, xml.Comment:
			continue
		case xml.StartElement:
			if t.Name.Local != "stream" || t.Name.Space != ns.Stream {
				return c.fail(fmt.Errorf("xmppclient: stream header: got <%s>: %w", t.Name.Local, ErrProtocol))
			}
			for _, a := range t.Attr {
				if a.Name.Local == "id" {
					c.mu.Lock()
					c.streamID = a.Value
					c.mu.Unlock()
				}
			}
			c.record('S', bytes.TrimSpace(c.rr.rec))
			el, err := c.readSync(ctx)
			if err != nil {
				return fmt.Errorf("xmppclient: stream features: %w", err)
			}
			if el.Name.Space != ns.Stream || el.Name.Local != "features" {
				return c.fail(fmt.Errorf("xmppclient: expected stream features, got <%s/>: %w", el.Name.Local, ErrProtocol))
			}
			f, err := parseFeatures(el)
			if err != nil {
				return c.fail(err)
			}
			c.mu.Lock()
			c.features = f
			if c.state < stateAuthenticated {
				c.timings.Stream += time.Since(t0)
			}
			c.mu.Unlock()
			return nil
		default:
			return c.fail(fmt.Errorf("xmppclient: stream header: unexpected %T: %w", tok, ErrProtocol))
		}
	}
}

func parseFeatures(el Stanza) (Features, error) {
	var fx struct {
		StartTLS *struct {
			Required *struct{} `xml:"required"`
		} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
		Mechanisms *struct {
			M []string `xml:"mechanism"`
		} `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms"`
		CB *struct {
			B []struct {
				Type string `xml:"type,attr"`
			} `xml:"channel-binding"`
		} `xml:"urn:xmpp:sasl-cb:0 sasl-channel-binding"`
		Bind     *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
		Register *struct{} `xml:"http://jabber.org/features/iq-register register"`
		Session  *struct {
			Optional *struct{} `xml:"optional"`
		} `xml:"urn:ietf:params:xml:ns:xmpp-session session"`
	}
	if err := el.Decode(&fx); err != nil {
		return Features{}, fmt.Errorf("xmppclient: stream features: %w", err)
	}
	f := Features{Raw: el.Raw}
	if fx.StartTLS != nil {
		f.StartTLS = true
		f.StartTLSRequired = fx.StartTLS.Required != nil
	}
	if fx.Mechanisms != nil {
		for _, m := range fx.Mechanisms.M {
			f.Mechanisms = append(f.Mechanisms, trimSpace(m))
		}
	}
	if fx.CB != nil {
		for _, b := range fx.CB.B {
			f.ChannelBindings = append(f.ChannelBindings, b.Type)
		}
	}
	f.Bind = fx.Bind != nil
	f.Register = fx.Register != nil
	if fx.Session != nil {
		f.Session = true
		f.SessionOptional = fx.Session.Optional != nil
	}
	return f, nil
}

// Features returns the stream features the server announced last.
func (c *Client) Features() Features {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.features
}

// TLSState returns the TLS connection state, or nil on a plaintext stream.
func (c *Client) TLSState() *tls.ConnectionState { return c.tlsState }

// StreamID returns the id the server gave the current stream.
func (c *Client) StreamID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streamID
}

// JID returns the full JID bound to the session ("" before Bind).
func (c *Client) JID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jid
}

// Domain returns the domain the stream was opened to.
func (c *Client) Domain() string { return c.cfg.domain }

// LocalAddr returns the client's side of the TCP connection.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// ID returns the connection id used in logs and transcripts.
func (c *Client) ID() uint64 { return c.id }

// Timings returns how long each step of connecting and logging in took.
func (c *Client) Timings() Timings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timings
}

// Err returns why the connection became unusable, or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) setState(s state) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

func (c *Client) getState() state {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// addSecret remembers a string that must never appear in a transcript.
func (c *Client) addSecret(s string) {
	if s == "" {
		return
	}
	c.mu.Lock()
	c.secrets = append(c.secrets, s)
	c.mu.Unlock()
}

// fail marks the connection unusable with err (the first error wins) and
// returns err.
func (c *Client) fail(err error) error {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	return err
}

// opContext returns ctx bounded by the client's timeout.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.timeout)
}

// watch makes blocked reads and writes return when ctx ends, by moving the
// connection's deadline; the returned stop restores nothing (every
// operation sets its own deadline first).
func (c *Client) watch(ctx context.Context) func() bool {
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
}

// netErr turns deadline errors into ErrTimeout and EOF into ErrClosed.
func (c *Client) netErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case ctx != nil && ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ErrTimeout, context.Cause(ctx))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// write sends data with a write deadline. logged, if not nil, is what the
// transcript records instead of data (the redacted form).
func (c *Client) write(ctx context.Context, data, logged []byte) error {
	if err := c.Err(); err != nil {
		return err
	}
	wctx, cancel := c.opContext(ctx)
	defer cancel()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	dl, _ := wctx.Deadline()
	c.conn.SetWriteDeadline(dl)
	stop := context.AfterFunc(wctx, func() { c.conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := c.conn.Write(data)
	stop()
	if logged == nil {
		logged = data
	}
	c.record('C', logged)
	if err != nil {
		return c.fail(fmt.Errorf("xmppclient: write: %w", c.netErr(wctx, err)))
	}
	return nil
}

// readSync reads the next top-level element in the caller's goroutine. A
// timeout leaves the decoder in an unknown state, so it is fatal.
func (c *Client) readSync(ctx context.Context) (Stanza, error) {
	if err := c.Err(); err != nil {
		return Stanza{}, err
	}
	rctx, cancel := c.opContext(ctx)
	defer cancel()
	stop := c.watch(rctx)
	defer stop()
	el, err := c.readElement()
	if err != nil {
		return Stanza{}, c.fail(c.netErr(rctx, err))
	}
	return el, nil
}

// readElement decodes the next top-level element of the stream with its
// raw bytes and tokens. The stream's end is ErrClosed; a stream error is a
// *StreamError.
func (c *Client) readElement() (Stanza, error) {
	c.rr.reset()
	var (
		el    Stanza
		depth int
	)
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return Stanza{}, err
		}
		if len(el.tokens) >= MaxTokens {
			return Stanza{}, fmt.Errorf("%w: %w: more than %d tokens in one element", ErrProtocol, ErrTooLarge, MaxTokens)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				el.Name = t.Name
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "type":
						el.Type = a.Value
					case "id":
						el.ID = a.Value
					case "from":
						el.From = a.Value
					case "to":
						el.To = a.Value
					}
				}
			}
			depth++
			if depth > MaxDepth {
				return Stanza{}, fmt.Errorf("%w: %w: elements nested deeper than %d", ErrProtocol, ErrTooLarge, MaxDepth)
			}
			el.tokens = append(el.tokens, t.Copy())
		case xml.EndElement:
			if depth == 0 {
				// </stream:stream>: RFC 6120 §4.4.
				c.record('S', []byte("</stream:stream>"))
				return Stanza{}, fmt.Errorf("%w: server closed the stream", ErrClosed)
			}
			depth--
			el.tokens = append(el.tokens, t)
			if depth == 0 {
				el.Raw = string(bytes.TrimSpace(c.rr.rec))
				c.record('S', []byte(el.Raw))
				if el.Name.Space == ns.Stream && el.Name.Local == "error" {
					return Stanza{}, parseStreamError(el)
				}
				return el, nil
			}
		case xml.CharData:
			if depth > 0 {
				el.tokens = append(el.tokens, t.Copy())
			} else {
				c.rr.reset() // whitespace keepalive between elements
			}
		case xml.Comment, xml.ProcInst, xml.Directive:
			// RFC 6120 §11.1: not allowed; ignore rather than fail.
		}
	}
}

func parseStreamError(el Stanza) error {
	var ex struct {
		Any []struct {
			XMLName xml.Name
			Data    string `xml:",chardata"`
		} `xml:",any"`
	}
	e := &StreamError{Condition: StreamUndefinedCondition}
	if err := el.Decode(&ex); err == nil {
		for _, a := range ex.Any {
			if a.XMLName.Space != ns.StreamErrors {
				continue
			}
			if a.XMLName.Local == "text" {
				e.Text = a.Data
			} else {
				e.Condition = StreamCondition(a.XMLName.Local)
			}
		}
	}
	return e
}

// recReader is the decoder's byte source: it records every byte the decoder
// consumes, so that each element's raw XML is known exactly. It also bounds
// them: the record is reset at every top-level element and whitespace run,
// so more than max bytes in it is one token too large, and reading stops
// before the decoder buffers it.
type recReader struct {
	br  *bufio.Reader
	rec []byte
	max int
}

func (r *recReader) tooLarge() error {
	return fmt.Errorf("%w: %w: more than %d bytes in one element, attribute, text or whitespace run", ErrProtocol, ErrTooLarge, r.max)
}

func (r *recReader) ReadByte() (byte, error) {
	if r.max > 0 && len(r.rec) >= r.max {
		return 0, r.tooLarge()
	}
	b, err := r.br.ReadByte()
	if err == nil {
		r.rec = append(r.rec, b)
	}
	return b, err
}

func (r *recReader) Read(p []byte) (int, error) {
	if r.max > 0 {
		left := r.max - len(r.rec)
		if left <= 0 {
			return 0, r.tooLarge()
		}
		if len(p) > left {
			p = p[:left]
		}
	}
	n, err := r.br.Read(p)
	r.rec = append(r.rec, p[:n]...)
	return n, err
}

func (r *recReader) reset() {
	if cap(r.rec) > 64<<10 {
		r.rec = nil
	}
	r.rec = r.rec[:0]
}

func (c *Client) newID() string {
	return "c" + strconv.FormatUint(c.id, 36) + "-" + strconv.FormatUint(c.nextID.Add(1), 36)
}

// Hijack hands the connection over to the caller after Bind, before the
// background reader has started, and makes the Client unusable. The
// returned reader holds any bytes already buffered; the caller owns the
// connection (deadlines, closing). The load generator uses it to run the
// post-login hot path with its own lean codec.
func (c *Client) Hijack() (net.Conn, *bufio.Reader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateBound || c.readerOn {
		return nil, nil, fmt.Errorf("xmppclient: hijack: %w", ErrState)
	}
	c.state = stateHijacked
	c.conn.SetDeadline(time.Time{})
	return c.conn, c.br, nil
}

// Close ends the stream politely (RFC 6120 §4.4): it sends
// </stream:stream>, waits (bounded by ctx and the client's timeout) for the
// server to close its side, and closes the connection.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	st := c.state
	if st == stateClosed || st == stateHijacked {
		c.mu.Unlock()
		return nil
	}
	c.state = stateClosed
	readerOn := c.readerOn
	broken := c.err != nil
	c.mu.Unlock()
	if !broken {
		if err := c.write(ctx, []byte("</stream:stream>"), nil); err == nil {
			cctx, cancel := c.opContext(ctx)
			if readerOn {
				select {
				case <-c.done:
				case <-cctx.Done():
				}
			} else {
				stop := c.watch(cctx)
				for {
					if _, err := c.readElement(); err != nil {
						break
					}
				}
				stop()
			}
			cancel()
		}
	}
	c.fail(ErrClosed)
	err := c.conn.Close()
	if readerOn {
		<-c.done
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("xmppclient: close: %w", err)
	}
	return nil
}

// Abort closes the TCP connection at once, without closing the stream: the
// server sees the connection drop.
func (c *Client) Abort() error {
	c.mu.Lock()
	c.state = stateClosed
	readerOn := c.readerOn
	c.mu.Unlock()
	c.fail(ErrClosed)
	err := c.conn.Close()
	if readerOn {
		<-c.done
	}
	return err
}
