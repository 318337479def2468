package fakexmpp

import (
	"io"
	"net"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// LockoutMode is how a server refuses an address after too many failed
// logins (WithLockout).
type LockoutMode int

// Lockout modes.
const (
	// LockoutSASLFailure answers every later login from the address, the
	// correct password included, with a SASL <failure/> of
	// Lockout.Condition (default temporary-auth-failure, RFC 6120 §6.5.10).
	LockoutSASLFailure LockoutMode = iota
	// LockoutClose closes every later connection from the address right
	// after accepting it.
	LockoutClose
	// LockoutStreamError answers every later stream from the address with
	// a <policy-violation/> stream error (RFC 6120 §4.9.3.14).
	LockoutStreamError
	// LockoutStall accepts every later connection from the address and
	// never answers: no refusal, only silence.
	LockoutStall
)

// Lockout makes the server refuse an address after After failed logins
// from it.
type Lockout struct {
	After     int
	Mode      LockoutMode
	Condition string // LockoutSASLFailure's condition
}

// WithLockout limits failed logins per client address.
func WithLockout(l Lockout) Option {
	return func(s *Server) {
		if l.Condition == "" {
			l.Condition = "temporary-auth-failure"
		}
		s.lockout = &l
	}
}

// WithRegistrationLimit refuses in-band registrations (XEP-0077 §3.1)
// from an address after max of them, with the stanza error condition
// cond (type wait).
func WithRegistrationLimit(max int, cond string) Option {
	return func(s *Server) { s.regLimit = &regLimit{max: max, cond: cond} }
}

type regLimit struct {
	max  int
	cond string
}

// registrationRefused answers a registration from an address over the
// limit and reports whether it did; otherwise it counts the registration.
func (ss *session) registrationRefused(e *elem) bool {
	s := ss.srv
	if s.regLimit == nil {
		return false
	}
	s.mu.Lock()
	if s.registrations == nil {
		s.registrations = map[string]int{}
	}
	host := hostOf(ss.conn)
	over := s.registrations[host] >= s.regLimit.max
	if !over {
		s.registrations[host]++
	}
	s.mu.Unlock()
	if over {
		ss.errorIQ(e, "wait", s.regLimit.cond)
	}
	return over
}

// WithIQStall leaves IQs whose payload is in namespace ns unanswered.
func WithIQStall(ns string) Option {
	return func(s *Server) { s.iqFaults = append(s.iqFaults, iqFault{ns: ns}) }
}

// WithIQError answers IQs whose payload is in namespace ns with the
// stanza error condition cond (type cancel), addressed to to ("" matches
// any address; "bare" matches the user's own bare JID).
func WithIQError(ns, to, cond string) Option {
	return func(s *Server) { s.iqFaults = append(s.iqFaults, iqFault{ns: ns, to: to, cond: cond}) }
}

type iqFault struct {
	ns, to, cond string
}

// iqFault answers (or ignores) an IQ as a fault option says; it reports
// whether it did.
func (ss *session) iqFault(e *elem, q *child) bool {
	for _, f := range ss.srv.iqFaults {
		if q.XMLName.Space != f.ns {
			continue
		}
		switch to := e.attr("to"); {
		case f.to == "":
		case f.to == "bare" && ss.user != "" && bareOf(to) == ss.bare():
		case f.to == to:
		default:
			continue
		}
		if f.cond != "" {
			ss.errorIQ(e, "cancel", f.cond)
		}
		return true
	}
	return false
}

func hostOf(c net.Conn) string {
	h, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return h
}

// noteFailedLogin counts a failed login from the session's address.
func (ss *session) noteFailedLogin() {
	s := ss.srv
	if s.lockout == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures == nil {
		s.failures = map[string]int{}
	}
	s.failures[hostOf(ss.conn)]++
}

// lockedOut reports whether the session's address is locked out.
func (ss *session) lockedOut() bool {
	s := ss.srv
	if s.lockout == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures[hostOf(ss.conn)] >= s.lockout.After
}

// refuseLocked refuses a new connection from a locked-out address as the
// lockout mode says; it reports whether it did (the connection is then
// done).
func (ss *session) refuseLocked() bool {
	if !ss.lockedOut() {
		return false
	}
	switch ss.srv.lockout.Mode {
	case LockoutClose:
		return true
	case LockoutStall:
		ss.conn.SetReadDeadline(time.Now().Add(time.Minute))
		io.Copy(io.Discard, ss.conn)
		return true
	case LockoutStreamError:
		if err := ss.openStreamHeaderOnly(); err == nil {
			ss.write("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
		}
		return true
	}
	return false
}

// openStreamHeaderOnly reads the client's stream header and sends the
// server's, without features.
func (ss *session) openStreamHeaderOnly() error {
	if err := ss.readStreamHeader(); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream from='" + ss.srv.domain + "' id='locked' version='1.0' xml:lang='en' xmlns='" + ns.Client + "' xmlns:stream='" + ns.Stream + "'>")
	return ss.write(b.String())
}
