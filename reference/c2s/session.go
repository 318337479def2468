package c2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xdg-go/scram"
	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/accept"
	"github.com/xmppcheck/xmppcheck/reference/im"
	"github.com/xmppcheck/xmppcheck/reference/redact"
	"github.com/xmppcheck/xmppcheck/reference/scramauth"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

func refusal(domain string) []byte {
	b := wire.AppendHeader(nil, wire.StreamHeader{From: domain, ID: streamID(), ContentNS: ns.Client})
	return wire.AppendStreamError(b, wire.PolicyViolation, "too many connections from your address")
}

func streamID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// session is one client connection.
type session struct {
	l    *Listener
	id   string
	raw  net.Conn // the TCP connection
	conn net.Conn // raw, or the TLS connection over it
	ip   string
	r    *wire.Reader

	secure     bool
	tlsState   tls.ConnectionState
	cb         scram.ChannelBinding
	authed     bool
	user       string
	res        *im.Resource
	deadline   time.Time // negotiation deadline (until bound)
	early      time.Time // stream header, STARTTLS and TLS deadline
	idleSet    time.Time // when the idle read deadline was last moved
	headerSent bool
	attempts   int

	mu      sync.Mutex
	cond    *sync.Cond
	out     []byte
	spare   []byte
	writing bool
	closing bool // close the connection once the queue is written
	closed  bool
	werr    error
}

func newSession(l *Listener, conn net.Conn, ip string) *session {
	s := &session{l: l, id: l.newID(), raw: conn, conn: conn, ip: ip}
	s.cond = sync.NewCond(&s.mu)
	now := time.Now()
	s.deadline = now.Add(l.cfg.Limits.AuthTimeout)
	s.early = now.Add(l.cfg.Limits.HandshakeTimeout)
	if s.early.After(s.deadline) {
		s.early = s.deadline
	}
	s.r = wire.NewReader(deadlineReader{s}, wire.WithMaxSize(l.cfg.Limits.MaxStanzaSize), wire.WithMaxDepth(l.cfg.Limits.MaxDepth))
	return s
}

// deadlineReader sets a read deadline before every read: the negotiation
// deadline until the session is bound, then the idle timeout.
type deadlineReader struct{ s *session }

func (d deadlineReader) Read(p []byte) (int, error) {
	s := d.s
	if s.res == nil && !s.secure {
		s.conn.SetReadDeadline(s.early)
	} else if s.res == nil {
		s.conn.SetReadDeadline(s.deadline)
	} else if now := time.Now(); now.Sub(s.idleSet) > time.Second {
		// The idle timeout is minutes: moving it once a second is enough.
		s.idleSet = now
		s.conn.SetReadDeadline(now.Add(s.l.cfg.Limits.IdleTimeout))
	}
	return s.conn.Read(p)
}

// ID implements im.Session.
func (s *session) ID() string { return s.id }

// errNegotiation ends a session after a stream error was sent.
var errNegotiation = errors.New("c2s: stream closed")

func (s *session) run(ctx context.Context, directTLS bool) {
	log := s.l.cfg.Logger
	s.l.cfg.Metrics.Sessions.WithLabelValues("negotiating").Inc()
	negotiating := true
	defer func() {
		if negotiating {
			s.l.cfg.Metrics.Sessions.WithLabelValues("negotiating").Dec()
		}
	}()
	log.Debug("connection opened", "conn", s.id)
	defer log.Debug("connection closed", "conn", s.id)
	if directTLS {
		if err := s.handshake(ctx); err != nil {
			s.raw.Close()
			return
		}
	}
	if err := s.negotiate(ctx); err != nil {
		if !errors.Is(err, errNegotiation) {
			log.Debug("negotiation ended", "conn", s.id, "err", redact.Wrap(err))
		}
		s.raw.Close()
		return
	}
	negotiating = false
	s.l.cfg.Metrics.Sessions.WithLabelValues("negotiating").Dec()
	s.serve(ctx)
}

func (s *session) handshake(ctx context.Context) error {
	s.raw.SetDeadline(s.early)
	tc := tls.Server(s.raw, s.l.cfg.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.l.cfg.Logger.Debug("TLS handshake failed", "conn", s.id, "err", redact.Wrap(err))
		return err
	}
	s.raw.SetWriteDeadline(time.Time{})
	s.conn = tc
	s.secure = true
	s.tlsState = tc.ConnectionState()
	if !s.l.cfg.NoPlus {
		s.cb, _ = scramauth.ChannelBinding(s.tlsState)
	}
	return nil
}

// writeNow writes b synchronously (negotiation only, before any queue).
func (s *session) writeNow(b []byte) error {
	s.conn.SetWriteDeadline(time.Now().Add(s.l.cfg.Limits.WriteTimeout))
	_, err := s.conn.Write(b)
	return err
}

// streamError sends a stream error during negotiation and ends it.
func (s *session) streamError(cond wire.Condition, text string) error {
	var b []byte
	if !s.headerSent {
		b = wire.AppendHeader(b, wire.StreamHeader{From: s.l.cfg.Domain, ID: streamID(), ContentNS: ns.Client})
	}
	b = wire.AppendStreamError(b, cond, text)
	s.l.cfg.Metrics.StreamErrors.WithLabelValues(string(cond)).Inc()
	s.writeNow(b)
	return errNegotiation
}

// readError turns a reader error into the stream's end.
func (s *session) readError(err error) error {
	var se *wire.SyntaxError
	switch {
	case errors.As(err, &se):
		return s.streamError(se.Condition, se.Text)
	case errors.Is(err, wire.ErrStreamEnd):
		s.writeNow([]byte(wire.StreamEnd))
		return errNegotiation
	case isTimeout(err):
		return s.streamError("connection-timeout", "")
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// openStream reads the client's stream header and answers with ours and the
// features of the current state (RFC 6120 §4.2, §4.3.2).
func (s *session) openStream() error {
	s.headerSent = false
	h, err := s.r.ReadHeader()
	if err != nil {
		return s.readError(err)
	}
	if h.ContentNS != ns.Client {
		return s.streamError(wire.InvalidNamespace, "the content namespace must be jabber:client")
	}
	if to := h.Get("to"); to != "" {
		if j, err := jid.Parse(to); err != nil || j.String() != s.l.cfg.Domain {
			return s.streamError("host-unknown", "this server serves "+s.l.cfg.Domain)
		}
	}
	if v := h.Get("version"); v == "" || !versionOK(v) {
		return s.streamError("unsupported-version", "version 1.0 is required")
	}
	hdr := wire.StreamHeader{From: s.l.cfg.Domain, ID: streamID(), ContentNS: ns.Client}
	if f := h.Get("from"); f != "" {
		if j, err := jid.Parse(f); err == nil {
			hdr.To = j.String()
		}
	}
	b := wire.AppendHeader(nil, hdr)
	s.headerSent = true
	b = append(b, "<stream:features>"...)
	switch {
	case !s.secure:
		b = append(b, "<starttls xmlns='"+ns.TLS+"'><required/></starttls>"...)
	case !s.authed:
		b = append(b, "<mechanisms xmlns='"+ns.SASL+"'>"...)
		for _, m := range s.mechanisms() {
			b = append(b, "<mechanism>"+m+"</mechanism>"...)
		}
		b = append(b, "</mechanisms>"...)
		if s.cb.IsSupported() {
			// XEP-0440: the channel binding types offered.
			b = append(b, "<sasl-channel-binding xmlns='"+ns.SASLCB+"'><channel-binding type='tls-exporter'/></sasl-channel-binding>"...)
		}
		if s.l.cfg.Router.RegistrationEnabled() {
			b = append(b, "<register xmlns='"+ns.RegisterFeature+"'/>"...)
		}
	default:
		b = append(b, "<bind xmlns='"+ns.Bind+"'/><session xmlns='"+ns.Session+"'><optional/></session>"...)
	}
	b = append(b, "</stream:features>"...)
	return s.writeNow(b)
}

func versionOK(v string) bool {
	major, _, _ := strings.Cut(v, ".")
	return major != "" && major != "0" && strings.Trim(major, "0123456789") == ""
}

func (s *session) mechanisms() []string {
	var ms []string
	for _, h := range s.l.cfg.Hashes {
		if s.cb.IsSupported() {
			ms = append(ms, scramauth.MechanismName(h, true))
		}
	}
	for _, h := range s.l.cfg.Hashes {
		ms = append(ms, scramauth.MechanismName(h, false))
	}
	return ms
}

// negotiate runs the stream until a resource is bound.
func (s *session) negotiate(ctx context.Context) error {
	if err := s.openStream(); err != nil {
		return err
	}
	for {
		el, err := s.r.Next()
		if err != nil {
			return s.readError(err)
		}
		switch {
		case !s.secure:
			if el.Name.Space == ns.TLS && el.Name.Local == "starttls" {
				if err := s.startTLS(ctx); err != nil {
					return err
				}
				continue
			}
			if el.Name.Space == ns.SASL && el.Name.Local == "auth" {
				// RFC 6120 §6.4.2/§6.5.3: no SASL before TLS.
				if err := s.writeNow(saslFailure("encryption-required", "STARTTLS is required before authentication")); err != nil {
					return err
				}
				continue
			}
			return s.streamError(wire.PolicyViolation, "STARTTLS is required (RFC 6120 §5.3.1)")
		case !s.authed:
			switch {
			case el.Name.Space == ns.SASL && el.Name.Local == "auth":
				ok, err := s.authenticate(ctx, el)
				if err != nil {
					return err
				}
				if ok {
					s.r.Reset(deadlineReader{s})
					if err := s.openStream(); err != nil {
						return err
					}
				}
			case el.Name.Space == ns.Client && el.Name.Local == "iq" && isRegisterIQ(el):
				reply := s.l.cfg.Router.RegisterUnauthenticated(ctx, el, s.ip)
				if err := s.writeNow(reply.Append(nil, ns.Client)); err != nil {
					return err
				}
			case el.Name.Space == ns.TLS:
				return s.streamError(wire.PolicyViolation, "TLS is already negotiated")
			default:
				return s.streamError("not-authorized", "authenticate first")
			}
		default:
			if el.Name.Space == ns.Client && el.Name.Local == "iq" {
				if b := el.Child(ns.Bind, "bind"); b != nil && el.Get("type") == "set" {
					done, err := s.bind(el, b)
					if err != nil || done {
						return err
					}
					continue
				}
			}
			return s.streamError("not-authorized", "bind a resource first")
		}
	}
}

func isRegisterIQ(el *wire.Element) bool {
	q := el.FirstElement()
	return q != nil && q.Name.Space == ns.Register
}

// startTLS answers <starttls/> with <proceed/>, upgrades the connection and
// restarts the stream (RFC 6120 §5.4.3).
func (s *session) startTLS(ctx context.Context) error {
	if err := s.writeNow([]byte("<proceed xmlns='" + ns.TLS + "'/>")); err != nil {
		return err
	}
	if err := s.handshake(ctx); err != nil {
		return errNegotiation
	}
	s.r.Reset(deadlineReader{s})
	return s.openStream()
}

func saslFailure(cond, text string) []byte {
	b := []byte("<failure xmlns='" + ns.SASL + "'><" + cond + "/>")
	if text != "" {
		b = append(b, "<text xml:lang='en'>"...)
		b = wire.AppendEscaped(b, text, false)
		b = append(b, "</text>"...)
	}
	return append(b, "</failure>"...)
}

func decodeSASL(el *wire.Element) ([]byte, bool) {
	t := strings.TrimSpace(el.Text())
	if t == "" || t == "=" {
		return nil, true
	}
	b, err := base64.StdEncoding.DecodeString(t)
	return b, err == nil
}

// authenticate runs one SASL exchange (RFC 6120 §6.4). It reports whether
// it succeeded; an error ends the stream.
func (s *session) authenticate(ctx context.Context, auth *wire.Element) (bool, error) {
	cfg := s.l.cfg
	mech := auth.Get("mechanism")
	s.attempts++
	if bf := cfg.BruteForce; bf != nil {
		if ok, wait := bf.Allow(s.ip); !ok {
			// auth.brute-force-protection: the one log line with an address.
			s.l.burst.Warn("login refused: too many failed logins", s.ip, []any{"addr", s.ip}, "conn", s.id, "addr", s.ip, "mechanism", mech)
			cfg.Metrics.Auth.WithLabelValues(metricMech(mech), "refused").Inc()
			return false, s.saslFail("not-authorized", fmt.Sprintf("too many failed logins from your address; try again in %s", wait.Round(time.Second)))
		}
	}
	if !slices.Contains(s.mechanisms(), mech) {
		return false, s.saslFail("invalid-mechanism", "")
	}
	conv, err := scramauth.Start(mech, cfg.Router.Credentials, s.cb, cfg.FakeKey, cfg.Iterations)
	if err != nil {
		return false, s.saslFail("invalid-mechanism", "")
	}
	in, ok := decodeSASL(auth)
	if !ok {
		return false, s.saslFail("incorrect-encoding", "")
	}
	if len(in) == 0 {
		// No initial response: an empty challenge asks for it (§6.4.2).
		if in, ok, err = s.challenge(nil, mech); !ok {
			return false, err
		}
	}
	for {
		out, done, err := conv.Step(in)
		if err != nil {
			return false, s.failedLogin(mech)
		}
		if done {
			user, nerr := cfg.Router.NormalizeUsername(conv.Username())
			if nerr != nil {
				return false, s.failedLogin(mech)
			}
			if az := conv.AuthzID(); az != "" && az != user+"@"+cfg.Domain {
				cfg.Metrics.Auth.WithLabelValues(metricMech(mech), "failure").Inc()
				return false, s.saslFail("invalid-authzid", "")
			}
			// A success does not clear the address's failures: otherwise
			// one's own account would reset the count between guesses at
			// another's.
			s.user = user
			s.authed = true
			cfg.Metrics.Auth.WithLabelValues(metricMech(mech), "success").Inc()
			cfg.Logger.Debug("authenticated", "conn", s.id, "mechanism", mech)
			return true, s.writeNow([]byte("<success xmlns='" + ns.SASL + "'>" + base64.StdEncoding.EncodeToString(out) + "</success>"))
		}
		if in, ok, err = s.challenge(out, mech); !ok {
			return false, err
		}
	}
}

// challenge sends a SASL challenge carrying data (an empty one without)
// and returns the decoded response. ok is false when the exchange ended
// instead (aborted, a malformed response, a read error); err then says
// whether the stream ends too.
func (s *session) challenge(data []byte, mech string) (in []byte, ok bool, err error) {
	c := "<challenge xmlns='" + ns.SASL + "'/>"
	if len(data) > 0 {
		c = "<challenge xmlns='" + ns.SASL + "'>" + base64.StdEncoding.EncodeToString(data) + "</challenge>"
	}
	if err := s.writeNow([]byte(c)); err != nil {
		return nil, false, err
	}
	el, err := s.r.Next()
	if err != nil {
		return nil, false, s.readError(err)
	}
	if done, err := s.saslAbort(el, mech); done {
		return nil, false, err
	}
	if in, ok = decodeSASL(el); !ok {
		return nil, false, s.saslFail("incorrect-encoding", "")
	}
	return in, true, nil
}

// saslAbort handles an element during an exchange that is not a response.
func (s *session) saslAbort(el *wire.Element, mech string) (bool, error) {
	if el.Name.Space == ns.SASL && el.Name.Local == "response" {
		return false, nil
	}
	if el.Name.Space == ns.SASL && el.Name.Local == "abort" {
		s.l.cfg.Metrics.Auth.WithLabelValues(metricMech(mech), "aborted").Inc()
		return true, s.saslFail("aborted", "")
	}
	return true, s.streamError("not-authorized", "expected a SASL response")
}

// failedLogin records a failed login: the only event whose log line carries
// the client's address (privacy.no-client-ip allows it).
func (s *session) failedLogin(mech string) error {
	cfg := s.l.cfg
	if cfg.BruteForce != nil {
		cfg.BruteForce.Add(s.ip)
	}
	cfg.Metrics.Auth.WithLabelValues(metricMech(mech), "failure").Inc()
	// Repeats from one address within logburst's interval become one line.
	s.l.burst.Warn("failed login", s.ip, []any{"addr", s.ip}, "conn", s.id, "addr", s.ip, "mechanism", mech)
	return s.saslFail("not-authorized", "")
}

// saslFail answers an authentication attempt with a SASL failure (RFC 6120
// §6.5) and ends the stream if it was one attempt too many.
func (s *session) saslFail(cond, text string) error {
	if err := s.writeNow(saslFailure(cond, text)); err != nil {
		return err
	}
	return s.tooMany()
}

// tooMany ends the stream after too many attempts on it.
func (s *session) tooMany() error {
	if s.attempts >= s.l.cfg.Limits.MaxAuthAttempts {
		return s.streamError(wire.PolicyViolation, "too many authentication attempts on this stream")
	}
	return nil
}

func metricMech(m string) string {
	if _, _, ok := scramauth.ParseMechanism(m); ok {
		return m
	}
	return "other"
}

// bind answers a resource binding request (RFC 6120 §7). done is true once a
// resource is bound.
func (s *session) bind(iq, b *wire.Element) (bool, error) {
	requested := strings.TrimSpace(b.ChildText(ns.Bind, "resource"))
	var result []byte
	res, err := s.l.cfg.Router.Bind(s, s.user, requested, s.ip, func(j jid.JID) {
		r := wire.New(ns.Client, "iq").SetAttr("type", "result").SetAttr("id", iq.Get("id"))
		r.Add(wire.New(ns.Bind, "bind").Add(wire.New(ns.Bind, "jid").AddText(j.String())))
		result = r.Append(nil, ns.Client)
		// Queued, so it precedes anything routed to the new resource.
		s.Send(result)
	})
	if err != nil {
		e := wire.New(ns.Client, "iq").SetAttr("type", "error").SetAttr("id", iq.Get("id"))
		e.Add(wire.New(ns.Client, "error").SetAttr("type", "modify").Add(wire.New(ns.StanzaErrors, "bad-request")))
		return false, s.writeNow(e.Append(nil, ns.Client))
	}
	s.res = res
	// Bound: the connection leaves the budget of unauthenticated ones.
	accept.Promote(s.raw)
	return true, nil
}

// serve reads stanzas of a bound session until the stream ends.
func (s *session) serve(ctx context.Context) {
	defer func() {
		s.l.cfg.Router.Unbind(s.res)
		s.finish()
	}()
	for {
		el, err := s.r.Next()
		if err != nil {
			var se *wire.SyntaxError
			switch {
			case errors.As(err, &se):
				s.Close(se.Condition, se.Text)
			case errors.Is(err, wire.ErrStreamEnd):
				s.closeStream()
			case isTimeout(err):
				s.Close("connection-timeout", "idle for too long")
			default:
				s.Close("", "")
			}
			return
		}
		if el.Name.Space != ns.Client || (el.Name.Local != "message" && el.Name.Local != "presence" && el.Name.Local != "iq") {
			s.Close("unsupported-stanza-type", fmt.Sprintf("{%s}%s is not supported", el.Name.Space, el.Name.Local))
			return
		}
		s.l.cfg.Router.Handle(ctx, s.res, el)
		if s.r.Buffered() == 0 {
			s.r.ShrinkBuffers()
		}
	}
}

// Send queues b for the client (im.Session). It never blocks: a writer
// goroutine runs while there is output.
func (s *session) Send(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.closed {
		return
	}
	if len(s.out)+len(b) > s.l.cfg.Limits.MaxQueue {
		s.out = wire.AppendStreamError(s.out[:0], wire.PolicyViolation, "too much output queued: the client does not read")
		s.l.cfg.Metrics.StreamErrors.WithLabelValues(string(wire.PolicyViolation)).Inc()
		s.closing = true
	} else {
		s.out = append(s.out, b...)
	}
	s.startWriter()
}

func (s *session) startWriter() {
	if !s.writing {
		s.writing = true
		go s.writeLoop()
	}
}

// Close queues a stream error (empty cond: none) and closes the connection
// once the queue is written (im.Session).
func (s *session) Close(cond wire.Condition, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.closed {
		return
	}
	if cond != "" {
		s.out = wire.AppendStreamError(s.out, cond, text)
		s.l.cfg.Metrics.StreamErrors.WithLabelValues(string(cond)).Inc()
	}
	s.closing = true
	s.startWriter()
}

// closeStream answers the client's </stream:stream> (RFC 6120 §4.4).
func (s *session) closeStream() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.closed {
		return
	}
	s.out = append(s.out, wire.StreamEnd...)
	s.closing = true
	s.startWriter()
}

// Flush waits until everything queued so far is written (or writing failed).
func (s *session) Flush(timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.writing && !s.closed {
		s.cond.Wait()
	}
	if s.closed && s.werr != nil {
		return s.werr
	}
	return nil
}

func (s *session) writeLoop() {
	for {
		s.mu.Lock()
		if len(s.out) == 0 {
			s.writing = false
			if s.closing && !s.closed {
				s.closed = true
				s.raw.Close()
			}
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		buf := s.out
		s.out = s.spare[:0]
		s.spare = nil
		s.mu.Unlock()

		s.conn.SetWriteDeadline(time.Now().Add(s.l.cfg.Limits.WriteTimeout))
		_, err := s.conn.Write(buf)

		s.mu.Lock()
		if cap(buf) <= 16<<10 {
			s.spare = buf[:0]
		}
		if err != nil {
			s.werr = err
			s.closed = true
			s.out = nil
			s.writing = false
			s.raw.Close()
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// finish closes the connection after the queue drains, bounded by the write
// timeout.
func (s *session) finish() {
	s.mu.Lock()
	if !s.closing && !s.closed {
		s.closing = true
		s.startWriter()
	}
	for s.writing && !s.closed {
		s.cond.Wait()
	}
	if !s.closed {
		s.closed = true
		s.raw.Close()
	}
	s.out, s.spare = nil, nil
	s.mu.Unlock()
}

var _ io.Reader = deadlineReader{}
