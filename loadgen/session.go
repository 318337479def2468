package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/loadgen/wire"
)

// session is one simulated user's established session on the hot path.
type session struct {
	idx  int
	bare string
	jid  string
	conn net.Conn
	br   *bufio.Reader
	r    *runner
	g    *group

	wmu  sync.Mutex
	wdl  time.Time // the write deadline in force (guarded by wmu)
	dead atomic.Bool

	approvals  atomic.Int32 // presence: subscriptions approved to us
	presenceAt atomic.Int64 // offline: when initial presence was sent (Unix ns)
	pongs      chan struct{}
}

// loginTimes are the steps of one login.
type loginTimes struct {
	xmppclient.Timings
}

// login establishes a session for account idx and hijacks it for the hot
// path. It does not send presence.
func (r *runner) login(ctx context.Context, idx int) (*session, loginTimes, error) {
	acct := r.cfg.Accounts[idx]
	opts := []xmppclient.Option{
		xmppclient.WithDomain(r.cfg.Target.Domain),
		xmppclient.WithTLSMode(r.cfg.Target.TLSMode),
		xmppclient.WithTimeout(r.cfg.Timeout),
		xmppclient.WithSCRAMCache(r.scram),
		xmppclient.WithLogger(r.cfg.Logger),
	}
	if r.cfg.Target.RootCAs != nil {
		opts = append(opts, xmppclient.WithRootCAs(r.cfg.Target.RootCAs))
	} else {
		opts = append(opts, xmppclient.WithInsecureSkipVerify())
	}
	if len(r.cfg.Target.Mechanisms) > 0 {
		opts = append(opts, xmppclient.WithMechanisms(r.cfg.Target.Mechanisms...))
	}
	if n := len(r.cfg.SourceAddrs); n > 0 {
		opts = append(opts, xmppclient.WithLocalAddr(r.cfg.SourceAddrs[r.srcNext.Add(1)%uint64(n)]))
	}
	c, err := xmppclient.Dial(ctx, r.cfg.Target.Addr, opts...)
	if err != nil {
		return nil, loginTimes{}, err
	}
	if err := c.Login(ctx, acct.User, acct.Password); err != nil {
		c.Abort()
		return nil, loginTimes{c.Timings()}, err
	}
	conn, br, err := c.Hijack()
	if err != nil {
		c.Abort()
		return nil, loginTimes{c.Timings()}, err
	}
	jid := c.JID()
	s := &session{idx: idx, jid: jid, bare: bareJID(jid), conn: conn, br: br, r: r, pongs: make(chan struct{}, 1)}
	return s, loginTimes{c.Timings()}, nil
}

func bareJID(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

// write sends b with a write deadline; a failed write kills the session.
func (s *session) write(b []byte) error {
	if s.dead.Load() {
		return errSessionDown
	}
	s.wmu.Lock()
	// Every write has a deadline between Timeout/2 and Timeout from its
	// start; it is moved only when less than half is left, which saves a
	// runtime timer update on most writes.
	if now := time.Now(); s.wdl.Sub(now) < s.r.cfg.Timeout/2 {
		s.wdl = now.Add(s.r.cfg.Timeout)
		s.conn.SetWriteDeadline(s.wdl)
	}
	_, err := s.conn.Write(b)
	s.wmu.Unlock()
	if err != nil {
		s.kill()
	}
	return err
}

var errSessionDown = errors.New("loadgen: session down")

func (s *session) kill() {
	if s.dead.CompareAndSwap(false, true) {
		s.conn.Close()
	}
}

// close ends the stream politely, without waiting for the server.
func (s *session) close() {
	if s.dead.Load() {
		return
	}
	s.write([]byte("</stream:stream>"))
	s.kill()
}

// maxElement bounds one received element.
const maxElement = 1 << 20

// readLoop reads the session until it dies or the run's read deadline
// passes, handing every top-level element to the runner. One goroutine per
// session; no allocation per stanza once the buffer has grown.
func (s *session) readLoop(deadline time.Time) {
	defer s.r.readers.Done()
	s.conn.SetReadDeadline(deadline)
	var src io.Reader = s.br
	buf := make([]byte, 0, 2048)
	for {
		if s.br != nil && s.br.Buffered() == 0 {
			src, s.br = s.conn, nil // drop the login's buffer
		}
		if len(buf) == cap(buf) {
			if cap(buf) >= maxElement {
				s.r.rec.Error("read:element-too-large")
				s.kill()
				return
			}
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		off := 0
		for {
			el, c, ok, werr := wire.Next(buf[off:])
			if werr != nil {
				if !s.dead.Load() && !s.r.closing.Load() {
					s.r.rec.Error("read:stream-closed-by-server")
				}
				s.kill()
				return
			}
			off += c
			if !ok {
				break
			}
			s.r.onElement(s, el)
		}
		if off > 0 {
			k := copy(buf, buf[off:])
			buf = buf[:k]
		}
		if err != nil {
			if !s.dead.Load() && !s.r.closing.Load() {
				s.r.rec.Error("read:" + errorKind(err))
			}
			s.kill()
			return
		}
	}
}

// errorKind classifies an error for the errors-by-kind table.
func errorKind(err error) string {
	var sasl *xmppclient.SASLError
	var stream *xmppclient.StreamError
	var stz *xmppclient.StanzaError
	var tlsAlert tls.AlertError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &sasl):
		if sasl.Condition != "" {
			return "auth:" + string(sasl.Condition)
		}
		return "auth:" + sasl.Other
	case errors.As(err, &stream):
		return "stream-error:" + string(stream.Condition)
	case errors.As(err, &stz):
		return "stanza-error:" + string(stz.Condition)
	case errors.Is(err, xmppclient.ErrNoMechanism):
		return "auth:no-common-mechanism"
	case errors.Is(err, xmppclient.ErrNoStartTLS), errors.Is(err, xmppclient.ErrTLSRefused):
		return "tls:refused"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return "tls:certificate"
	case errors.As(err, &tlsAlert):
		return "tls:alert"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connect:refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "connect:no-free-port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "fd-limit"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection-reset"
	case errors.Is(err, xmppclient.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, xmppclient.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, errSessionDown):
		return "session-down"
	case errors.Is(err, xmppclient.ErrServerSignature):
		return "auth:bad-server-signature"
	case errors.Is(err, xmppclient.ErrProtocol):
		return "protocol"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if strings.Contains(err.Error(), "tls") {
		return "tls:other"
	}
	return "other"
}

// stanzaErrorCondition extracts the defined condition of an error stanza
// (RFC 6120 §8.3.3) without a full parse.
func stanzaErrorCondition(el []byte) string {
	i := bytes.Index(el, []byte("<error"))
	if i < 0 {
		return "undefined-condition"
	}
	rest := el[i+6:]
	for {
		j := bytes.IndexByte(rest, '<')
		if j < 0 || j+1 >= len(rest) {
			return "undefined-condition"
		}
		rest = rest[j:]
		name := wire.Name(rest)
		if len(name) > 0 && rest[1] != '/' && !bytes.Equal(name, []byte("text")) {
			return string(name)
		}
		rest = rest[1:]
	}
}
