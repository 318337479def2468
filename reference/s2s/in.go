package s2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/accept"
	"github.com/xmppcheck/xmppcheck/reference/redact"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// inConn is an inbound stream from a remote server: it requires STARTTLS,
// answers dialback (as receiving and as authoritative server) and SASL
// EXTERNAL, and delivers the stanzas of the domains it authenticated.
type inConn struct {
	s    *Server
	conn net.Conn
	log  *slog.Logger

	wmu sync.Mutex
	w   io.Writer

	mu          sync.Mutex
	authed      map[string]bool
	wg          sync.WaitGroup
	verifySlots slots
}

// maxPendingVerifies bounds the dialback verifications one inbound stream
// may have outstanding.
const maxPendingVerifies = 8

// slots is a counting semaphore that refuses instead of waiting.
type slots struct {
	mu sync.Mutex
	n  int
}

func (s *slots) TryAcquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= maxPendingVerifies {
		return false
	}
	s.n++
	return true
}

func (s *slots) Release() {
	s.mu.Lock()
	s.n--
	s.mu.Unlock()
}

func newInConn(s *Server, c net.Conn) *inConn {
	return &inConn{s: s, conn: c, authed: map[string]bool{},
		log: s.cfg.logger.With("conn", "in-"+newID()[:8])}
}

func (ic *inConn) write(s string) error {
	ic.wmu.Lock()
	defer ic.wmu.Unlock()
	ic.conn.SetWriteDeadline(time.Now().Add(ic.s.cfg.ioTimeout))
	_, err := io.WriteString(ic.w, s)
	return err
}

func (ic *inConn) authCount() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return len(ic.authed)
}

func (ic *inConn) isAuthed(domain string) bool {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.authed[strings.ToLower(domain)]
}

// fatal sends a stream error and closes the stream (RFC 6120 §4.9).
func (ic *inConn) fatal(cond, text string) {
	ic.log.Info("s2s: inbound stream error", "condition", cond, "text", text)
	ic.write(streamError(cond, text) + "</stream:stream>")
}

func (ic *inConn) serve(ctx context.Context) {
	ic.w = ic.conn
	stop := context.AfterFunc(ctx, func() {
		ic.write("</stream:stream>")
		ic.conn.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		stop()
		ic.conn.Close()
		ic.wg.Wait() // dialback verifications in flight
	}()
	// Stream header, STARTTLS and the TLS handshake within seconds: a
	// slowloris holds a descriptor no longer.
	early := time.Now().Add(ic.s.cfg.handshakeTimeout)
	ic.conn.SetReadDeadline(early)

	sr := newWireStream(ic.conn, ic.s.cfg.maxElement)
	from, to, err := sr.header()
	if err != nil {
		ic.write(streamHeader(ic.s.domain, "", newID()))
		ic.fatal(conditionOfErr(err, "bad-format"), "")
		return
	}
	if err := ic.write(streamHeader(ic.s.domain, from, newID())); err != nil {
		return
	}
	if to != "" && !ic.s.isLocal(to) {
		ic.fatal("host-unknown", "")
		return
	}
	// RFC 6120 §5.3.1: nothing but STARTTLS before TLS.
	if ic.write("<stream:features><starttls xmlns='"+ns.TLS+"'><required/></starttls></stream:features>") != nil {
		return
	}
	el, err := sr.next()
	if err != nil {
		if errors.As(err, new(*wire.SyntaxError)) {
			ic.fatal(conditionOfErr(err, ""), "")
		}
		return
	}
	if el.XMLName.Space != ns.TLS || el.XMLName.Local != "starttls" {
		ic.fatal("policy-violation", "STARTTLS is required")
		return
	}
	if ic.write("<proceed xmlns='"+ns.TLS+"'/>") != nil {
		return
	}
	tc := tls.Server(ic.conn, &tls.Config{
		Certificates: ic.s.cfg.certs,
		MinVersion:   ic.s.cfg.minTLS,
		MaxVersion:   ic.s.cfg.maxTLS,
		// A certificate is welcome (SASL EXTERNAL) but not required
		// (dialback).
		ClientAuth: tls.RequestClientCert,
	})
	hctx, cancel := context.WithDeadline(ctx, early)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		// A peer below the policy's floor ends here.
		ic.log.Info("s2s: inbound TLS handshake refused", "err", redact.Wrap(err))
		return
	}
	cs := tc.ConnectionState()
	ic.log.Debug("s2s: inbound TLS", "version", tls.VersionName(cs.Version))
	ic.wmu.Lock()
	ic.w = tc
	ic.wmu.Unlock()

	saslDone := false
	for {
		// A new stream after TLS and after SASL (RFC 6120 §5.4.3.3, §6.4.6).
		ic.conn.SetReadDeadline(time.Now().Add(ic.s.cfg.ioTimeout))
		sr = newWireStream(tc, ic.s.cfg.maxElement)
		from, to, err = sr.header()
		if err != nil {
			return
		}
		id := newID()
		if ic.write(streamHeader(ic.s.domain, from, id)) != nil {
			return
		}
		if to != "" && !ic.s.isLocal(to) {
			ic.fatal("host-unknown", "")
			return
		}
		var feats strings.Builder
		feats.WriteString("<stream:features>")
		if !saslDone {
			if from != "" && ic.s.verifyPeer(cs, from) {
				feats.WriteString("<mechanisms xmlns='" + ns.SASL + "'><mechanism>EXTERNAL</mechanism></mechanisms>")
			}
			feats.WriteString("<dialback xmlns='" + ns.DialbackFeature + "'><errors/></dialback>")
		}
		feats.WriteString("</stream:features>")
		if ic.write(feats.String()) != nil {
			return
		}
		restart, err := ic.elements(ctx, sr, cs, id, from)
		if err != nil || !restart {
			return
		}
		saslDone = true
	}
}

// elements handles the elements of one stream; it returns true when SASL
// succeeded and the stream restarts.
func (ic *inConn) elements(ctx context.Context, sr *wireStream, cs tls.ConnectionState, id, from string) (bool, error) {
	for {
		// Peers keep idle streams open; one silent for twice the idle
		// timeout is gone. Until a domain is authenticated (or for a stream
		// used only to ask for verifications) silence is allowed for the
		// I/O timeout only.
		if ic.authCount() == 0 {
			ic.conn.SetReadDeadline(time.Now().Add(ic.s.cfg.ioTimeout))
		} else {
			ic.conn.SetReadDeadline(time.Now().Add(2 * ic.s.cfg.idleTimeout))
		}
		el, err := sr.next()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				// Shutting down: the stream was closed already.
			case errors.Is(err, errStreamEnd):
				ic.write("</stream:stream>")
			case errors.As(err, new(*wire.SyntaxError)):
				ic.fatal(conditionOfErr(err, "not-well-formed"), "")
			default:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					ic.fatal("connection-timeout", "")
				} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					ic.fatal("not-well-formed", "")
				}
			}
			return false, err
		}
		n := el.XMLName
		switch {
		case n.Space == ns.SASL && n.Local == "auth":
			ok, err := ic.external(el, cs, from)
			if err != nil || ok {
				return ok, err
			}
		case n.Space == ns.Dialback && n.Local == "result":
			ic.dialbackResult(ctx, el, id)
		case n.Space == ns.Dialback && n.Local == "verify":
			ic.dialbackVerify(el)
		case isStanza(n):
			if err := ic.stanza(ctx, el); err != nil {
				return false, err
			}
		case n.Space == ns.Stream && n.Local == "error":
			ic.log.Info("s2s: peer sent a stream error", "condition", conditionOf(el))
			ic.write("</stream:stream>")
			return false, io.EOF
		default:
			ic.fatal("unsupported-stanza-type", "")
			return false, fmt.Errorf("s2s: unexpected <%s xmlns='%s'>", n.Local, n.Space)
		}
	}
}

// external handles SASL EXTERNAL (RFC 6120 §6, XEP-0178): the peer's
// certificate must verify for the domain it claims.
func (ic *inConn) external(el *element, cs tls.ConnectionState, from string) (bool, error) {
	failure := func(cond string) (bool, error) {
		return false, ic.write("<failure xmlns='" + ns.SASL + "'><" + cond + "/></failure>")
	}
	if el.attr("mechanism") != "EXTERNAL" {
		return failure("invalid-mechanism")
	}
	domain := from
	if t := strings.TrimSpace(el.Text); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return failure("incorrect-encoding")
		}
		domain = string(b)
	}
	if domain == "" || (from != "" && !strings.EqualFold(domain, from)) || !ic.s.verifyPeer(cs, domain) {
		return failure("not-authorized")
	}
	if err := ic.write("<success xmlns='" + ns.SASL + "'/>"); err != nil {
		return false, err
	}
	ic.mu.Lock()
	ic.authed[strings.ToLower(domain)] = true
	accept.Promote(ic.conn)
	ic.mu.Unlock()
	ic.log.Info("s2s: inbound stream authenticated", "remote", domain, "method", "SASL EXTERNAL")
	return true, nil
}

// dialbackResult is XEP-0220 §2.2–2.4 as receiving server: verify the key
// with the claimed domain's authoritative server, then answer.
func (ic *inConn) dialbackResult(ctx context.Context, el *element, id string) {
	from, to, key := el.attr("from"), el.attr("to"), strings.TrimSpace(el.Text)
	answer := func(typ, errXML string) {
		s := "<db:result from='" + attrEscape(to) + "' to='" + attrEscape(from) + "' type='" + typ + "'"
		if errXML == "" {
			s += "/>"
		} else {
			s += ">" + errXML + "</db:result>"
		}
		ic.write(s)
	}
	if !ic.s.isLocal(to) {
		answer("error", "<error type='cancel'><item-not-found xmlns='"+ns.StanzaErrors+"'/></error>")
		return
	}
	if from == "" || ic.s.isLocal(from) || key == "" {
		answer("error", "<error type='modify'><bad-request xmlns='"+ns.StanzaErrors+"'/></error>")
		return
	}
	if ic.isAuthed(from) {
		answer("valid", "")
		return
	}
	if !ic.verifySlots.TryAcquire() {
		// XEP-0220 §2.4: too many outstanding requests.
		answer("error", "<error type='wait'><resource-constraint xmlns='"+ns.StanzaErrors+"'/></error>")
		return
	}
	ic.wg.Add(1)
	go func() {
		defer ic.wg.Done()
		defer ic.verifySlots.Release()
		valid, err := ic.s.verify(ctx, to, strings.ToLower(from), id, key)
		switch {
		case err != nil:
			ic.log.Info("s2s: dialback verification failed", "remote", from, "err", redact.Wrap(err))
			answer("error", "<error type='cancel'><remote-server-not-found xmlns='"+ns.StanzaErrors+"'/></error>")
		case valid:
			ic.mu.Lock()
			ic.authed[strings.ToLower(from)] = true
			accept.Promote(ic.conn)
			ic.mu.Unlock()
			ic.log.Info("s2s: inbound stream authenticated", "remote", from, "method", "dialback")
			answer("valid", "")
		default:
			ic.log.Info("s2s: dialback key invalid", "remote", from)
			answer("invalid", "")
		}
	}()
}

// dialbackVerify is XEP-0220 §2.3 as authoritative server: say whether we
// made this key for that stream.
func (ic *inConn) dialbackVerify(el *element) {
	from, to, id, key := el.attr("from"), el.attr("to"), el.attr("id"), strings.TrimSpace(el.Text)
	typ := "invalid"
	if ic.s.isLocal(to) && from != "" && id != "" {
		if want := ic.s.dialbackKey(strings.ToLower(from), strings.ToLower(to), id); constantTimeEqual(want, key) {
			typ = "valid"
		}
	}
	ic.write("<db:verify from='" + attrEscape(to) + "' to='" + attrEscape(from) + "' id='" + attrEscape(id) + "' type='" + typ + "'/>")
}

// conditionOfErr names the stream error for a reader error: the reader's
// own condition for XML it refused, else def.
func conditionOfErr(err error, def string) string {
	var se *wire.SyntaxError
	if errors.As(err, &se) {
		return string(se.Condition)
	}
	return def
}

func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// stanza checks the addresses of an inbound stanza (RFC 6120 §8.1.1.2,
// §8.1.2.2) and delivers it.
func (ic *inConn) stanza(ctx context.Context, el *element) error {
	// The reader already parsed the element: no second parse.
	st, err := stanzaFrom(el.Raw, xml.StartElement{Name: xml.Name{Local: el.XMLName.Local}, Attr: el.Attr})
	st.elem = el.welem
	if err != nil {
		ic.fatal("invalid-xml", "")
		return err
	}
	if st.From.Domainpart() == "" || st.To.Domainpart() == "" {
		ic.fatal("improper-addressing", "")
		return errors.New("s2s: stanza without from or to")
	}
	if !ic.isAuthed(st.From.Domainpart()) {
		ic.fatal("invalid-from", "")
		return fmt.Errorf("s2s: stanza from unauthenticated domain %s", st.From.Domainpart())
	}
	if !ic.s.isLocal(st.To.Domainpart()) {
		ic.fatal("host-unknown", "")
		return fmt.Errorf("s2s: stanza to non-local domain %s", st.To.Domainpart())
	}
	ic.s.cfg.deliver(ctx, st)
	return nil
}
