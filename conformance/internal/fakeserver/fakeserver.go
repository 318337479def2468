package fakeserver

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/testcert"
)

// Mode is how the server behaves.
type Mode int

// Modes.
const (
	// Normal speaks enough XMPP for the TLS and authentication probes.
	Normal Mode = iota
	// Silent accepts TCP connections and never sends a byte.
	Silent
	// Garbage answers every connection with bytes that are not XML.
	Garbage
	// DropTLS offers STARTTLS, says proceed, and closes the connection on
	// the first bytes of the TLS handshake.
	DropTLS
)

// Option configures a server.
type Option func(*Server)

// WithMode sets the behaviour.
func WithMode(m Mode) Option { return func(s *Server) { s.mode = m } }

// WithTLSVersions sets the versions the server accepts.
func WithTLSVersions(lo, hi uint16) Option { return func(s *Server) { s.min, s.max = lo, hi } }

// WithDirectTLS makes the listener speak TLS at once (XEP-0368).
func WithDirectTLS() Option { return func(s *Server) { s.direct = true } }

// WithPlaintextAuth offers SASL PLAIN before TLS and accepts it (the
// fault tls.c2s-required must catch).
func WithPlaintextAuth() Option { return func(s *Server) { s.plainAuth = true } }

// PreTLSAuth is how the server answers an <auth/> sent before TLS (when
// WithPlaintextAuth is not given).
type PreTLSAuth int

// Answers to a pre-TLS <auth/>.
const (
	// PreTLSEncryptionRequired: <failure><encryption-required/></failure>
	// (RFC 6120 §6.5.4), the default.
	PreTLSEncryptionRequired PreTLSAuth = iota
	// PreTLSIgnore: no answer at all; the server waits for STARTTLS.
	PreTLSIgnore
	// PreTLSNotAuthorized: <failure><not-authorized/></failure>, the
	// answer a wrong password gets too.
	PreTLSNotAuthorized
	// PreTLSStreamError: a <policy-violation/> stream error, then the
	// stream closed.
	PreTLSStreamError
	// PreTLSReset: the TCP connection reset (RST) without a word.
	PreTLSReset
)

// WithPreTLSAuth sets the answer to an <auth/> sent before TLS.
func WithPreTLSAuth(a PreTLSAuth) Option { return func(s *Server) { s.preTLSAuth = a } }

// OldHello is what the server does with a ClientHello that offers only
// versions below its lowest (WithTLSVersions).
type OldHello int

// Answers to a ClientHello below the server's floor.
const (
	// OldHelloAlert: a protocol_version alert (crypto/tls's own answer),
	// the default.
	OldHelloAlert OldHello = iota
	// OldHelloClose: the TCP connection closed without a byte of TLS.
	OldHelloClose
	// OldHelloStall: no answer; the server holds the connection open
	// until the client gives up.
	OldHelloStall
)

// WithOldHello sets the answer to a ClientHello below the floor.
func WithOldHello(h OldHello) Option { return func(s *Server) { s.oldHello = h } }

// WithS2SStreamErrorAfterTLS makes a jabber:server stream reopened over
// TLS end at once with a <not-authorized/> stream error: the hardening
// that refuses a peer without a valid certificate after the handshake.
func WithS2SStreamErrorAfterTLS() Option { return func(s *Server) { s.s2sErrAfterTLS = true } }

// Upload configures a fake XEP-0363 service (upload.localhost) and its
// HTTPS server.
type Upload struct {
	// Guessable slot ids: a counter instead of 128 random bits.
	Guessable bool
	// Listing: GET of a directory lists what is under it
	// (http.FileServer's directory listing).
	Listing bool
}

// WithUpload adds an upload service.
func WithUpload(u Upload) Option { return func(s *Server) { s.upload = &u } }

// WithUser adds an account.
func WithUser(user, password string) Option {
	return func(s *Server) { s.users[user] = password }
}

// Server is a running fake server.
type Server struct {
	mode      Mode
	min, max  uint16
	direct    bool
	plainAuth bool
	users     map[string]string

	preTLSAuth     PreTLSAuth
	oldHello       OldHello
	s2sErrAfterTLS bool
	ln             net.Listener
	tlsCfg         *tls.Config
	wg             sync.WaitGroup
	mu             sync.Mutex
	conns          []net.Conn

	upload  *Upload
	httpSrv *httptest.Server
	files   string // upload directory
	slotSeq int
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{min: tls.VersionTLS12, max: tls.VersionTLS13, users: map[string]string{}}
	for _, o := range opts {
		o(s)
	}
	s.tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert(t)}, MinVersion: s.min, MaxVersion: s.max}
	if s.oldHello != OldHelloAlert {
		s.tlsCfg.GetConfigForClient = s.oldHelloHook
	}
	if s.min < tls.VersionTLS12 {
		for _, c := range tls.CipherSuites() {
			s.tlsCfg.CipherSuites = append(s.tlsCfg.CipherSuites, c.ID)
		}
		for _, c := range tls.InsecureCipherSuites() {
			s.tlsCfg.CipherSuites = append(s.tlsCfg.CipherSuites, c.ID)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	if s.upload != nil {
		s.startHTTP(t)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// oldHelloHook closes or stalls a connection whose ClientHello offers
// only versions below the floor, before any byte of TLS is sent.
func (s *Server) oldHelloHook(hi *tls.ClientHelloInfo) (*tls.Config, error) {
	top := uint16(0)
	for _, v := range hi.SupportedVersions {
		top = max(top, v)
	}
	if top >= s.min {
		return nil, nil
	}
	switch s.oldHello {
	case OldHelloClose:
		hi.Conn.Close()
	case OldHelloStall:
		io.Copy(io.Discard, hi.Conn) // until the client closes or the deadline
	}
	return nil, fmt.Errorf("fakeserver: ClientHello below the floor")
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HTTPAddr is the upload server's address ("" without WithUpload).
func (s *Server) HTTPAddr() string {
	if s.httpSrv == nil {
		return ""
	}
	return s.httpSrv.Listener.Addr().String()
}

func (s *Server) startHTTP(t testing.TB) {
	s.files = t.TempDir()
	listing := http.FileServer(http.Dir(s.files))
	s.httpSrv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := filepath.Join(s.files, filepath.FromSlash(path.Clean("/"+r.URL.Path)))
		switch r.Method {
		case http.MethodPut:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			os.WriteFile(p, b, 0o644)
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				http.ServeFile(w, r, p)
				return
			}
			if s.upload.Listing {
				listing.ServeHTTP(w, r)
				return
			}
			http.NotFound(w, r)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	s.httpSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert(t)}}
	s.httpSrv.StartTLS()
	t.Cleanup(s.httpSrv.Close)
}

// iq answers an IQ after authentication: bind, disco, upload slots, ping.
func (s *Server) iq(conn net.Conn, id, inner string) {
	switch {
	case strings.Contains(inner, ns.Bind):
		fmt.Fprintf(conn, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>u@localhost/r</jid></bind></iq>", id)
	case strings.Contains(inner, "disco#info") && s.upload != nil:
		fmt.Fprintf(conn, "<iq type='result' id='%s' from='localhost'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='store' type='file'/><feature var='urn:xmpp:http:upload:0'/></query></iq>", id)
	case strings.Contains(inner, ns.Upload) && s.upload != nil:
		s.mu.Lock()
		s.slotSeq++
		slot := fmt.Sprintf("%08d", s.slotSeq)
		s.mu.Unlock()
		if !s.upload.Guessable {
			b := make([]byte, 16)
			rand.Read(b)
			slot = fmt.Sprintf("%x", b)
		}
		u := "https://upload.localhost/upload/" + slot + "/photo.jpg"
		fmt.Fprintf(conn, "<iq type='result' id='%s'><slot xmlns='urn:xmpp:http:upload:0'><put url='%s'/><get url='%s'/></slot></iq>", id, u, u)
	case strings.Contains(inner, ns.Ping):
		fmt.Fprintf(conn, "<iq type='result' id='%s'/>", id)
	default:
		fmt.Fprintf(conn, "<iq type='error' id='%s'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", id)
	}
}

// Close stops the server and closes every connection.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	switch s.mode {
	case Silent:
		io.Copy(io.Discard, c)
		return
	case Garbage:
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n\x00\x01\x02 <<<not xml"))
		io.Copy(io.Discard, io.LimitReader(c, 1<<16))
		return
	}
	var conn net.Conn = c
	secure := false
	if s.direct {
		if s.mode == DropTLS {
			c.Read(make([]byte, 1))
			return
		}
		tc := tls.Server(c, s.tlsCfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn, secure = tc, true
	}
	authed := false
	for {
		dec := xml.NewDecoder(conn)
		space, ok := readHeader(dec)
		if !ok {
			return
		}
		fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams' id='%d' from='localhost' version='1.0'>", space, time.Now().UnixNano())
		if secure && space == ns.Server && s.s2sErrAfterTLS {
			io.WriteString(conn, "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
			return
		}
		var feats strings.Builder
		switch {
		case authed:
			feats.WriteString("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")
		case !secure:
			feats.WriteString("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
			if s.plainAuth {
				feats.WriteString("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>")
			}
		default:
			feats.WriteString("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>")
		}
		fmt.Fprintf(conn, "<stream:features>%s</stream:features>", feats.String())
		restart := false
		for !restart {
			var el struct {
				XMLName xml.Name
				Mech    string `xml:"mechanism,attr"`
				ID      string `xml:"id,attr"`
				Text    string `xml:",chardata"`
				Inner   string `xml:",innerxml"`
			}
			tok, err := dec.Token()
			if err != nil {
				return
			}
			start, ok := tok.(xml.StartElement)
			if !ok {
				if _, end := tok.(xml.EndElement); end {
					return
				}
				continue
			}
			if err := dec.DecodeElement(&el, &start); err != nil {
				return
			}
			switch el.XMLName.Local {
			case "starttls":
				if secure {
					return
				}
				io.WriteString(conn, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
				if s.mode == DropTLS {
					c.Read(make([]byte, 1))
					return
				}
				tc := tls.Server(c, s.tlsCfg)
				if err := tc.Handshake(); err != nil {
					return
				}
				conn, secure, restart = tc, true, true
			case "auth":
				if !secure && !s.plainAuth {
					switch s.preTLSAuth {
					case PreTLSIgnore:
					case PreTLSNotAuthorized:
						io.WriteString(conn, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>")
					case PreTLSStreamError:
						io.WriteString(conn, "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
						return
					case PreTLSReset:
						if tc, ok := c.(*net.TCPConn); ok {
							tc.SetLinger(0)
						}
						return
					default:
						io.WriteString(conn, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>")
					}
					continue
				}
				raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text))
				parts := strings.Split(string(raw), "\x00")
				if el.Mech == "PLAIN" && len(parts) == 3 && s.users[parts[1]] == parts[2] && parts[2] != "" {
					io.WriteString(conn, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
					authed, restart = true, true
				} else {
					io.WriteString(conn, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>")
				}
			case "iq":
				s.iq(conn, el.ID, el.Inner)
			}
		}
	}
}

func readHeader(dec *xml.Decoder) (string, bool) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if st, ok := tok.(xml.StartElement); ok && st.Name.Local == "stream" {
			for _, a := range st.Attr {
				if a.Name.Space == "" && a.Name.Local == "xmlns" {
					return a.Value, true
				}
			}
			return ns.Client, true
		}
	}
}

var (
	certOnce sync.Once
	certVal  tls.Certificate
	certErr  error
)

func cert(t testing.TB) tls.Certificate {
	certOnce.Do(func() { certVal, certErr = testcert.SelfSigned("localhost") })
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certVal
}
