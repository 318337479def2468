package s2s

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/redact"
)

// outConn is the outbound stream to one remote domain: it dials, secures and
// authenticates the stream, then writes the queued stanzas in order. One
// goroutine (run) does every write; a second reads.
type outConn struct {
	s      *Server
	local  string // our domain this stream speaks for
	domain string
	log    *slog.Logger

	mu       sync.Mutex
	queue    []Stanza
	verifies []verifyReq
	pending  map[string]verifyReq // sent db:verify, by stream id
	dead     bool
	wake     chan struct{}
	batch    []byte // run's write buffer
}

type verifyReq struct {
	id, key string
	res     chan verifyResult
}

type verifyResult struct {
	valid bool
	err   error
}

func newOutConn(s *Server, local, domain string) *outConn {
	return &outConn{
		s: s, local: local, domain: domain, pending: map[string]verifyReq{}, wake: make(chan struct{}, 1),
		log: s.cfg.logger.With("conn", "out-"+newID()[:8], "local", local, "remote", domain),
	}
}

func (o *outConn) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outConn) isDead() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dead
}

// enqueue adds st to the queue; false means the connection is dead.
func (o *outConn) enqueue(st Stanza) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dead {
		return false, nil
	}
	if len(o.queue) >= o.s.cfg.queueLimit {
		return true, ErrQueueFull
	}
	o.queue = append(o.queue, st)
	o.signal()
	return true, nil
}

// verify sends a db:verify for a stream of the remote server's and waits for
// the answer (XEP-0220 §2.3, receiving server to authoritative server).
func (o *outConn) verify(ctx context.Context, id, key string) (bool, error) {
	req := verifyReq{id: id, key: key, res: make(chan verifyResult, 1)}
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return false, ErrClosed
	}
	o.verifies = append(o.verifies, req)
	o.signal()
	o.mu.Unlock()
	t := time.NewTimer(o.s.cfg.setupTimeout + o.s.cfg.ioTimeout)
	defer t.Stop()
	select {
	case r := <-req.res:
		return r.valid, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, errSetupTimout
	}
}

type readEvent struct {
	el  *element
	err error
}

func (o *outConn) run(ctx context.Context) {
	setup, cancel := context.WithTimeout(ctx, o.s.cfg.setupTimeout)
	defer cancel()
	conn, sr, streamID, authed, err := o.connect(setup)
	if err != nil {
		var ne net.Error
		if ctx.Err() == nil && (setup.Err() != nil || errors.As(err, &ne) && ne.Timeout()) {
			err = fmt.Errorf("%w: %v", errSetupTimout, err)
		}
		o.fail(err, false)
		return
	}
	defer conn.Close()
	events := make(chan readEvent, 16)
	done := make(chan struct{})
	defer close(done) // before conn.Close: the reader then never blocks
	go func() {
		for {
			el, err := sr.next()
			select {
			case events <- readEvent{el, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	w := &deadlineWriter{c: conn, d: o.s.cfg.ioTimeout}
	if !authed {
		// XEP-0220 §2.1: the originating server asserts its identity.
		key := o.s.dialbackKey(o.domain, o.local, streamID)
		if _, err := io.WriteString(w, "<db:result from='"+attrEscape(o.local)+"' to='"+attrEscape(o.domain)+"'>"+key+"</db:result>"); err != nil {
			o.fail(err, false)
			return
		}
	}
	setupDone := setup.Done()
	if authed {
		setupDone = nil
		conn.SetReadDeadline(time.Time{})
		o.log.Info("s2s: outbound stream authenticated", "method", "SASL EXTERNAL")
	}
	idle := time.NewTimer(o.s.cfg.idleTimeout)
	defer idle.Stop()
	everAuthed := authed
	for {
		if err := o.flush(w, authed); err != nil {
			o.fail(err, everAuthed)
			return
		}
		select {
		case <-o.wake:
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
			idle.Reset(o.s.cfg.idleTimeout)
		case ev := <-events:
			if ev.err != nil {
				if errors.Is(ev.err, errStreamEnd) {
					io.WriteString(w, "</stream:stream>")
					ev.err = fmt.Errorf("s2s: %s closed the stream", o.domain)
				}
				o.fail(ev.err, everAuthed)
				return
			}
			ok, err := o.handle(ev.el, &authed)
			if err != nil {
				io.WriteString(w, "</stream:stream>")
				o.fail(err, everAuthed)
				return
			}
			if ok && authed && !everAuthed {
				everAuthed = true
				setupDone = nil
				conn.SetReadDeadline(time.Time{})
				o.log.Info("s2s: outbound stream authenticated", "method", "dialback")
			}
		case <-setupDone:
			o.fail(errSetupTimout, false)
			return
		case <-idle.C:
			o.mu.Lock()
			busy := len(o.queue) > 0 || len(o.verifies) > 0 || len(o.pending) > 0
			if !busy {
				o.dead = true
			}
			o.mu.Unlock()
			if busy {
				idle.Reset(o.s.cfg.idleTimeout)
				continue
			}
			o.log.Debug("s2s: closing idle outbound stream")
			io.WriteString(w, "</stream:stream>")
			o.fail(nil, true)
			return
		case <-ctx.Done():
			io.WriteString(w, "</stream:stream>")
			o.fail(ErrClosed, false)
			return
		}
	}
}

// handle processes an element the remote server sent on our stream.
func (o *outConn) handle(el *element, authed *bool) (bool, error) {
	switch {
	case el.XMLName.Space == ns.Dialback && el.XMLName.Local == "result":
		switch el.attr("type") {
		case "valid":
			*authed = true
			return true, nil
		case "invalid":
			return false, fmt.Errorf("%w: dialback key refused", ErrAuth)
		default:
			return false, fmt.Errorf("%w: dialback error %s", ErrAuth, conditionOf(el))
		}
	case el.XMLName.Space == ns.Dialback && el.XMLName.Local == "verify":
		id := el.attr("id")
		o.mu.Lock()
		req, ok := o.pending[id]
		delete(o.pending, id)
		o.mu.Unlock()
		if ok {
			r := verifyResult{valid: el.attr("type") == "valid"}
			if t := el.attr("type"); t != "valid" && t != "invalid" {
				r.err = fmt.Errorf("%w: verify error %s", ErrAuth, conditionOf(el))
			}
			req.res <- r
		}
		return false, nil
	case el.XMLName.Space == ns.Stream && el.XMLName.Local == "error":
		return false, fmt.Errorf("s2s: stream error from %s: %s", o.domain, conditionOf(el))
	}
	o.log.Debug("s2s: ignored element on outbound stream", "element", el.XMLName.Local)
	return false, nil
}

// conditionOf names the first child of an error element.
func conditionOf(el *element) string {
	for _, c := range el.Children {
		if c.XMLName.Local == "error" {
			return conditionOf(&c)
		}
		if c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return "(no condition)"
}

// flush writes pending verifies, then (once authenticated) queued stanzas,
// in order. A stanza leaves the queue only once written.
func (o *outConn) flush(w io.Writer, authed bool) error {
	for {
		o.mu.Lock()
		if len(o.verifies) > 0 {
			req := o.verifies[0]
			o.verifies = o.verifies[1:]
			o.pending[req.id] = req
			o.mu.Unlock()
			if _, err := io.WriteString(w, "<db:verify from='"+attrEscape(o.local)+"' to='"+attrEscape(o.domain)+"' id='"+attrEscape(req.id)+"'>"+textEscape(req.key)+"</db:verify>"); err != nil {
				return err
			}
			continue
		}
		if !authed || len(o.queue) == 0 {
			o.mu.Unlock()
			return nil
		}
		// Coalesce queued stanzas into one write that fits one TLS record:
		// a record arrives whole or not at all, so a failed write leaves
		// every stanza of the batch unsent and safe to send again, and
		// never half-delivered (which a retry would duplicate).
		o.batch = o.batch[:0]
		n := 0
		for n < len(o.queue) && (n == 0 || len(o.batch)+len(o.queue[n].Raw) <= maxBatch) {
			o.batch = append(o.batch, o.queue[n].Raw...)
			n++
		}
		o.mu.Unlock()
		if _, err := w.Write(o.batch); err != nil {
			return err
		}
		o.mu.Lock()
		o.queue = o.queue[n:]
		if len(o.queue) == 0 {
			o.queue = nil
		}
		o.mu.Unlock()
	}
}

// maxBatch keeps a coalesced write inside one TLS record (16 KiB of
// plaintext, RFC 8446 §5.1).
const maxBatch = 16 << 10

// fail ends the connection: queued stanzas bounce (or, once, move to a new
// connection when an authenticated stream broke), verifications fail.
func (o *outConn) fail(err error, wasAuthed bool) {
	o.mu.Lock()
	o.dead = true
	queue, verifies, pending := o.queue, o.verifies, o.pending
	o.queue, o.verifies, o.pending = nil, nil, map[string]verifyReq{}
	o.mu.Unlock()
	o.s.dropOut(o)
	if err != nil && !errors.Is(err, ErrClosed) {
		o.log.Warn("s2s: outbound stream failed", "err", redact.Wrap(err), "queued", len(queue))
	}
	verr := err
	if verr == nil {
		verr = ErrClosed
	}
	for _, r := range verifies {
		r.res <- verifyResult{err: verr}
	}
	for _, r := range pending {
		r.res <- verifyResult{err: verr}
	}
	if len(queue) == 0 {
		return
	}
	if wasAuthed && !errors.Is(err, ErrClosed) {
		// Not written: safe to send once more on a new stream.
		var again []Stanza
		for _, st := range queue {
			if st.retried {
				again = append(again, st)
				continue
			}
			st.retried = true
			if o.s.Send(o.s.ctx, st) != nil {
				again = append(again, st)
			}
		}
		queue = again
	}
	cond := stanza.RemoteServerNotFound
	if errors.Is(err, errSetupTimout) || errors.Is(err, context.DeadlineExceeded) {
		cond = stanza.RemoteServerTimeout
	}
	text := "cannot reach " + o.domain
	if err != nil {
		text += ": " + redact.Err(err)
	}
	o.s.bounce(queue, cond, text)
}

// connect dials, negotiates STARTTLS and, when possible, SASL EXTERNAL. It
// returns the stream ready for dialback (or authenticated).
func (o *outConn) connect(ctx context.Context) (net.Conn, *streamReader, string, bool, error) {
	addrs, err := o.s.resolve(ctx, o.domain)
	if err != nil {
		return nil, nil, "", false, err
	}
	var conn net.Conn
	for _, a := range addrs {
		conn, err = o.s.cfg.dialer(ctx, a)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, nil, "", false, fmt.Errorf("%w: connect: %v", ErrNoRoute, err)
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	// Closing the connection ends any read or write stuck in negotiation.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	header := streamHeader(o.local, o.domain, "")
	if _, err := io.WriteString(conn, header); err != nil {
		return nil, nil, "", false, err
	}
	sr := newStreamReader(conn, o.s.cfg.maxElement)
	if _, err := sr.header(); err != nil {
		return nil, nil, "", false, err
	}
	feats, err := o.features(sr)
	if err != nil {
		return nil, nil, "", false, err
	}
	// RFC 6120 §5.3.1: STARTTLS is mandatory here.
	if feats.child(ns.TLS, "starttls") == nil {
		io.WriteString(conn, streamError("policy-violation", "TLS is required")+"</stream:stream>")
		return nil, nil, "", false, ErrNoTLS
	}
	if _, err := io.WriteString(conn, "<starttls xmlns='"+ns.TLS+"'/>"); err != nil {
		return nil, nil, "", false, err
	}
	el, err := sr.next()
	if err != nil {
		return nil, nil, "", false, err
	}
	if el.XMLName.Space != ns.TLS || el.XMLName.Local != "proceed" {
		return nil, nil, "", false, fmt.Errorf("%w: STARTTLS refused (%s)", ErrNoTLS, el.XMLName.Local)
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName:   o.domain,
		MinVersion:   o.s.cfg.minTLS,
		MaxVersion:   o.s.cfg.maxTLS,
		Certificates: o.s.cfg.certs,
		// Identity is proven by dialback unless the certificate verifies
		// (checked below, for SASL EXTERNAL): self-signed peers federate.
		InsecureSkipVerify: true,
		// Full-size records from the start, so a batch (maxBatch) is one
		// record and arrives whole or not at all.
		DynamicRecordSizingDisabled: true,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, "", false, fmt.Errorf("s2s: TLS with %s: %w", o.domain, err)
	}
	cs := tc.ConnectionState()
	verified := o.s.verifyPeer(cs, o.domain)
	o.log.Debug("s2s: outbound TLS", "version", tls.VersionName(cs.Version), "verified", verified)

	restart := func() (*streamReader, xml.StartElement, *element, error) {
		if _, err := io.WriteString(tc, header); err != nil {
			return nil, xml.StartElement{}, nil, err
		}
		sr := newStreamReader(tc, o.s.cfg.maxElement)
		h, err := sr.header()
		if err != nil {
			return nil, h, nil, err
		}
		f, err := o.features(sr)
		return sr, h, f, err
	}
	sr, h, feats, err := restart()
	if err != nil {
		return nil, nil, "", false, err
	}
	if verified && hasMechanism(feats, "EXTERNAL") {
		// XEP-0178 §3: the authorization identity is left empty ("=").
		if _, err := io.WriteString(tc, "<auth xmlns='"+ns.SASL+"' mechanism='EXTERNAL'>=</auth>"); err != nil {
			return nil, nil, "", false, err
		}
		el, err := sr.next()
		if err != nil {
			return nil, nil, "", false, err
		}
		if el.XMLName.Space == ns.SASL && el.XMLName.Local == "success" {
			sr, _, _, err = restart()
			if err != nil {
				return nil, nil, "", false, err
			}
			ok = true
			return tc, sr, "", true, nil
		}
		o.log.Info("s2s: SASL EXTERNAL refused; trying dialback", "condition", conditionOf(el))
	}
	if feats.child(ns.DialbackFeature, "dialback") == nil && !declaresDialback(h) {
		return nil, nil, "", false, fmt.Errorf("%w: %s offers neither usable SASL EXTERNAL nor dialback", ErrAuth, o.domain)
	}
	id := headerAttr(h, "id")
	if id == "" {
		return nil, nil, "", false, fmt.Errorf("s2s: %s sent no stream id", o.domain)
	}
	ok = true
	return tc, sr, id, false, nil
}

func (o *outConn) features(sr *streamReader) (*element, error) {
	el, err := sr.next()
	if err != nil {
		return nil, err
	}
	if el.XMLName.Space == ns.Stream && el.XMLName.Local == "error" {
		return nil, fmt.Errorf("s2s: stream error from %s: %s", o.domain, conditionOf(el))
	}
	if el.XMLName.Space != ns.Stream || el.XMLName.Local != "features" {
		return nil, fmt.Errorf("s2s: %s sent <%s/>, want stream features", o.domain, el.XMLName.Local)
	}
	return el, nil
}

func hasMechanism(feats *element, name string) bool {
	m := feats.child(ns.SASL, "mechanisms")
	if m == nil {
		return false
	}
	for _, c := range m.Children {
		if c.XMLName.Local == "mechanism" && c.Text == name {
			return true
		}
	}
	return false
}

func declaresDialback(h xml.StartElement) bool {
	for _, a := range h.Attr {
		if a.Name.Space == "xmlns" && a.Value == ns.Dialback {
			return true
		}
	}
	return false
}

// deadlineWriter sets a write deadline before every write.
type deadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.d))
	return w.c.Write(p)
}
