package fakexmpp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/testcert"
)

// Server is the fake server.
type Server struct {
	domain      string
	mechs       []string
	requireTLS  bool
	dataForm    bool
	minTLS      uint16
	iterations  int
	cert        tls.Certificate
	pool        *x509.CertPool
	ln, lnTLS   net.Listener
	closed      chan struct{}
	wg          sync.WaitGroup
	start       time.Time
	connCounter atomic.Uint64

	mu       sync.Mutex
	users    map[string]*account
	sessions map[string]*session // full JID -> session
	authFail *failure
	conns    map[*session]bool

	// Faults for the conformance suite's tests (faults.go).
	lockout       *Lockout
	failures      map[string]int // failed logins per client address
	iqFaults      []iqFault
	regLimit      *regLimit
	registrations map[string]int // registrations per client address
}

type failure struct{ cond, text string }

type account struct {
	password string
	creds    map[string]scram.StoredCredentials
	roster   map[string]*rosterItem
	vcard    string
	offline  []string // raw message stanzas
	lastOut  time.Time
}

type rosterItem struct {
	jid, name, sub, ask string
	groups              []string
}

// Option configures a Server.
type Option func(*Server)

// WithDomain sets the domain (default "localhost").
func WithDomain(d string) Option { return func(s *Server) { s.domain = d } }

// WithMechanisms sets the SASL mechanisms offered after TLS (default
// SCRAM-SHA-256, SCRAM-SHA-1, PLAIN).
func WithMechanisms(m ...string) Option { return func(s *Server) { s.mechs = m } }

// WithoutTLSRequirement offers SASL and registration on a plaintext stream
// too (a non-compliant server, for negative tests).
func WithoutTLSRequirement() Option { return func(s *Server) { s.requireTLS = false } }

// WithDataFormRegistration makes the registration form a XEP-0004 data form.
func WithDataFormRegistration() Option { return func(s *Server) { s.dataForm = true } }

// WithMinTLSVersion sets the lowest TLS version accepted (default TLS 1.2).
func WithMinTLSVersion(v uint16) Option { return func(s *Server) { s.minTLS = v } }

// WithIterations sets the SCRAM iteration count of new accounts (default 4096).
func WithIterations(n int) Option { return func(s *Server) { s.iterations = n } }

// New creates a server with a fresh self-signed certificate for its domain.
func New(opts ...Option) (*Server, error) {
	s := &Server{
		domain:     "localhost",
		mechs:      []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"},
		requireTLS: true,
		minTLS:     tls.VersionTLS12,
		iterations: 4096,
		closed:     make(chan struct{}),
		users:      map[string]*account{},
		sessions:   map[string]*session{},
		conns:      map[*session]bool{},
		start:      time.Now(),
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.makeCert(); err != nil {
		return nil, err
	}
	return s, nil
}

// makeCert makes the server's certificate: a self-signed CA naming the
// domain, its upload service and 127.0.0.1, which CertPool hands clients.
func (s *Server) makeCert() error {
	ca, err := testcert.NewCA(s.domain, s.domain, "upload."+s.domain, "127.0.0.1")
	if err != nil {
		return fmt.Errorf("fakexmpp: %w", err)
	}
	s.cert, s.pool = ca.Cert, ca.Pool
	return nil
}

// Start listens on 127.0.0.1 (one port for STARTTLS, one for direct TLS)
// and serves until Close.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("fakexmpp: listen: %w", err)
	}
	lnTLS, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return fmt.Errorf("fakexmpp: listen: %w", err)
	}
	s.ln, s.lnTLS = ln, lnTLS
	s.wg.Add(2)
	go s.accept(ln, false)
	go s.accept(lnTLS, true)
	return nil
}

// Start creates a server with opts and starts it for one test; it is
// closed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Addr is the STARTTLS c2s address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// TLSAddr is the direct TLS (XEP-0368) c2s address.
func (s *Server) TLSAddr() string { return s.lnTLS.Addr().String() }

// Domain is the server's domain.
func (s *Server) Domain() string { return s.domain }

// CertPool holds the server's self-signed certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Close stops listening and drops every connection.
func (s *Server) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	s.ln.Close()
	s.lnTLS.Close()
	s.mu.Lock()
	for ss := range s.conns {
		ss.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// AddUser creates an account (or resets its password).
func (s *Server) AddUser(user, password string) error {
	a, err := s.newAccount(password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.users[user]; old != nil {
		old.password, old.creds = a.password, a.creds
		return nil
	}
	s.users[user] = a
	return nil
}

func (s *Server) newAccount(password string) (*account, error) {
	a := &account{password: password, creds: map[string]scram.StoredCredentials{}, roster: map[string]*rosterItem{}}
	for name, h := range map[string]scram.HashGeneratorFcn{"SCRAM-SHA-1": scram.SHA1, "SCRAM-SHA-256": scram.SHA256} {
		cl, err := h.NewClient("x", password, "")
		if err != nil {
			return nil, fmt.Errorf("fakexmpp: %w", err)
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: s.iterations})
		if err != nil {
			return nil, fmt.Errorf("fakexmpp: %w", err)
		}
		a.creds[name] = sc
	}
	return a, nil
}

// HasUser reports whether the account exists.
func (s *Server) HasUser(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[user] != nil
}

// CheckPassword reports whether user's password is password.
func (s *Server) CheckPassword(user, password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.users[user]
	return a != nil && a.password == password
}

// SetAuthFailure makes every following SASL exchange fail with the given
// condition (RFC 6120 §6.5) and text; cond "" restores normal checking.
func (s *Server) SetAuthFailure(cond, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cond == "" {
		s.authFail = nil
		return
	}
	s.authFail = &failure{cond, text}
}

// Sessions returns the number of bound sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// OfflineCount returns the number of messages stored for user.
func (s *Server) OfflineCount(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.users[user]; a != nil {
		return len(a.offline)
	}
	return 0
}

func (s *Server) accept(ln net.Listener, direct bool) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		ss := &session{srv: s, conn: conn, id: s.connCounter.Add(1)}
		s.mu.Lock()
		s.conns[ss] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				ss.cleanup()
				conn.Close()
				s.mu.Lock()
				delete(s.conns, ss)
				s.mu.Unlock()
			}()
			if direct {
				tc := tls.Server(conn, s.tlsConfig())
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				conn.SetDeadline(time.Time{})
				ss.conn = tc
				ss.secure = true
			}
			ss.serve()
		}()
	}
}

func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: s.minTLS, NextProtos: []string{"xmpp-client"}}
}

// session is one client connection.
type session struct {
	srv    *Server
	conn   net.Conn
	id     uint64
	dec    *xml.Decoder
	wmu    sync.Mutex
	secure bool
	user   string // authenticated localpart
	jid    string // bound full JID
	avail  bool
	done   bool
}

func (ss *session) bare() string { return ss.user + "@" + ss.srv.domain }

func (ss *session) write(s string) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(ss.conn, s)
	return err
}

// elem is a generic top-level element.
type elem struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Inner    string     `xml:",innerxml"`
	Children []child    `xml:",any"`
}

type child struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Inner    string     `xml:",innerxml"`
	Text     string     `xml:",chardata"`
	Children []child    `xml:",any"`
}

func attr(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

func (e *elem) attr(n string) string { return attr(e.Attrs, n) }

func (c *child) find(local string) *child {
	for i := range c.Children {
		if c.Children[i].XMLName.Local == local {
			return &c.Children[i]
		}
	}
	return nil
}

func (e *elem) first() *child {
	if len(e.Children) == 0 {
		return nil
	}
	return &e.Children[0]
}

var errStreamEnd = errors.New("stream end")

// readStreamHeader reads the client's stream header.
func (ss *session) readStreamHeader() error {
	ss.dec = xml.NewDecoder(ss.conn)
	ss.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		tok, err := ss.dec.Token()
		if err != nil {
			return err
		}
		if st, ok := tok.(xml.StartElement); ok {
			if st.Name.Local != "stream" || st.Name.Space != ns.Stream {
				return errors.New("no stream header")
			}
			return nil
		}
	}
}

// openStream reads the client's stream header and sends ours and the features.
func (ss *session) openStream() error {
	if err := ss.readStreamHeader(); err != nil {
		return err
	}
	id := strconv.FormatUint(ss.id, 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	hdr := "<?xml version='1.0'?><stream:stream from='" + ss.srv.domain + "' id='" + id + "' version='1.0' xml:lang='en' xmlns='" + ns.Client + "' xmlns:stream='" + ns.Stream + "'>"
	var f strings.Builder
	f.WriteString("<stream:features>")
	switch {
	case ss.user != "":
		f.WriteString("<bind xmlns='" + ns.Bind + "'/><session xmlns='" + ns.Session + "'><optional/></session>")
	case !ss.secure && ss.srv.requireTLS:
		f.WriteString("<starttls xmlns='" + ns.TLS + "'><required/></starttls>")
	default:
		if !ss.secure {
			f.WriteString("<starttls xmlns='" + ns.TLS + "'/>")
		}
		f.WriteString("<mechanisms xmlns='" + ns.SASL + "'>")
		for _, m := range ss.srv.mechs {
			f.WriteString("<mechanism>" + m + "</mechanism>")
		}
		f.WriteString("</mechanisms><register xmlns='http://jabber.org/features/iq-register'/>")
	}
	f.WriteString("</stream:features>")
	return ss.write(hdr + f.String())
}

func (ss *session) next() (*elem, error) {
	for {
		ss.conn.SetReadDeadline(time.Now().Add(10 * time.Minute))
		tok, err := ss.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var e elem
			if err := ss.dec.DecodeElement(&e, &t); err != nil {
				return nil, err
			}
			return &e, nil
		case xml.EndElement:
			return nil, errStreamEnd
		}
	}
}

func (ss *session) serve() {
	if ss.refuseLocked() {
		return
	}
	if err := ss.openStream(); err != nil {
		return
	}
	for {
		e, err := ss.next()
		if err != nil {
			if errors.Is(err, errStreamEnd) {
				ss.write("</stream:stream>")
			}
			return
		}
		switch {
		case e.XMLName.Space == ns.TLS && e.XMLName.Local == "starttls":
			if ss.secure {
				return
			}
			ss.write("<proceed xmlns='" + ns.TLS + "'/>")
			tc := tls.Server(ss.conn, ss.srv.tlsConfig())
			ss.conn.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				return
			}
			ss.conn.SetDeadline(time.Time{})
			ss.conn = tc
			ss.secure = true
			if err := ss.openStream(); err != nil {
				return
			}
		case e.XMLName.Space == ns.SASL && e.XMLName.Local == "auth":
			ok, err := ss.auth(e)
			if err != nil {
				return
			}
			if ok {
				if err := ss.openStream(); err != nil {
					return
				}
			}
		case e.XMLName.Local == "iq":
			if !ss.iq(e) {
				return
			}
		case e.XMLName.Local == "message":
			if ss.jid != "" {
				ss.message(e)
			}
		case e.XMLName.Local == "presence":
			if ss.jid != "" {
				ss.presence(e)
			}
		}
		if ss.done {
			return
		}
	}
}

func (ss *session) saslFailure(cond, text string) error {
	t := ""
	if text != "" {
		t = "<text xml:lang='en'>" + xmlEscape(text) + "</text>"
	}
	return ss.write("<failure xmlns='" + ns.SASL + "'><" + cond + "/>" + t + "</failure>")
}

// auth runs one SASL exchange; ok reports success.
func (ss *session) auth(e *elem) (ok bool, err error) {
	if !ss.secure && ss.srv.requireTLS {
		return false, ss.saslFailure("encryption-required", "")
	}
	mech := e.attr("mechanism")
	offered := false
	for _, m := range ss.srv.mechs {
		offered = offered || m == mech
	}
	if !offered {
		return false, ss.saslFailure("invalid-mechanism", "")
	}
	payload, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(e.Inner, "=")))
	if err != nil {
		return false, ss.saslFailure("incorrect-encoding", "")
	}
	ss.srv.mu.Lock()
	fail := ss.srv.authFail
	ss.srv.mu.Unlock()
	if fail != nil {
		return false, ss.saslFailure(fail.cond, fail.text)
	}
	if ss.lockedOut() && ss.srv.lockout.Mode == LockoutSASLFailure {
		return false, ss.saslFailure(ss.srv.lockout.Condition, "too many failed logins")
	}
	var user string
	switch mech {
	case "PLAIN":
		parts := strings.Split(string(payload), "\x00")
		if len(parts) != 3 {
			return false, ss.saslFailure("malformed-request", "")
		}
		ss.srv.mu.Lock()
		a := ss.srv.users[parts[1]]
		good := a != nil && a.password == parts[2]
		ss.srv.mu.Unlock()
		if !good {
			ss.noteFailedLogin()
			return false, ss.saslFailure("not-authorized", "wrong username or password")
		}
		user = parts[1]
		if err := ss.write("<success xmlns='" + ns.SASL + "'/>"); err != nil {
			return false, err
		}
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		h := scram.SHA1
		if mech == "SCRAM-SHA-256" {
			h = scram.SHA256
		}
		srv, err := h.NewServer(func(u string) (scram.StoredCredentials, error) {
			ss.srv.mu.Lock()
			defer ss.srv.mu.Unlock()
			a := ss.srv.users[u]
			if a == nil {
				return scram.StoredCredentials{}, errors.New("unknown user")
			}
			return a.creds[mech], nil
		})
		if err != nil {
			return false, err
		}
		conv := srv.NewConversation()
		msg := string(payload)
		for {
			out, err := conv.Step(msg)
			if conv.Done() {
				if err != nil || !conv.Valid() {
					ss.noteFailedLogin()
					return false, ss.saslFailure("not-authorized", "wrong username or password")
				}
				user = conv.Username()
				if err := ss.write("<success xmlns='" + ns.SASL + "'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</success>"); err != nil {
					return false, err
				}
				break
			}
			if err != nil {
				ss.noteFailedLogin()
				return false, ss.saslFailure("not-authorized", "")
			}
			if err := ss.write("<challenge xmlns='" + ns.SASL + "'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</challenge>"); err != nil {
				return false, err
			}
			r, err := ss.next()
			if err != nil {
				return false, err
			}
			if r.XMLName.Local == "abort" {
				return false, ss.saslFailure("aborted", "")
			}
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Inner))
			if err != nil {
				return false, ss.saslFailure("incorrect-encoding", "")
			}
			msg = string(b)
		}
	default:
		return false, ss.saslFailure("invalid-mechanism", "")
	}
	ss.user = user
	return true, nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&apos;")
}
