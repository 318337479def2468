package s2s

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/accept"
	"github.com/xmppcheck/xmppcheck/spec"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// DeliverFunc hands a stanza to the local server: an inbound stanza from a
// remote domain, or a bounce for a local sender.
type DeliverFunc func(ctx context.Context, s Stanza)

// Resolver finds where a domain's XMPP server listens. net.Resolver
// satisfies it.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Defaults.
const (
	DefaultSetupTimeout = 30 * time.Second
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultIOTimeout    = 60 * time.Second
	DefaultQueueLimit   = 10000
	DefaultMaxElement   = 1 << 20
	DefaultMaxInbound   = 1000
	// DefaultMaxInboundPerAddr caps inbound streams from one address (an
	// IPv6 address counts by its /64).
	DefaultMaxInboundPerAddr = 10
	// DefaultHandshakeTimeout bounds an inbound connection's stream header,
	// STARTTLS and TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	defaultPort             = "5269"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	certs            []tls.Certificate
	roots            *x509.CertPool
	minTLS           uint16
	maxTLS           uint16 // tests: a peer stuck on an old version
	hosts            map[string]string
	staticOnly       bool
	resolver         Resolver
	secret           []byte
	deliver          DeliverFunc
	logger           *slog.Logger
	setupTimeout     time.Duration
	idleTimeout      time.Duration
	ioTimeout        time.Duration
	queueLimit       int
	maxElement       int
	maxInbound       int
	perAddr          int
	handshakeTimeout time.Duration
	local            []string
	dialer           func(ctx context.Context, addr string) (net.Conn, error)
}

// WithCertificates sets the certificates the server presents, as a TLS
// server on inbound streams and as a TLS client on outbound ones (SASL
// EXTERNAL needs both).
func WithCertificates(c ...tls.Certificate) Option { return func(cf *config) { cf.certs = c } }

// WithRootCAs sets the roots peer certificates are verified against; a peer
// whose certificate verifies for its domain may use SASL EXTERNAL. Without
// it the system roots are used.
func WithRootCAs(p *x509.CertPool) Option { return func(c *config) { c.roots = p } }

// WithPolicy applies the policy: tls.s2s-min-version is the TLS floor of
// both directions.
func WithPolicy(p *spec.Policy) Option {
	return func(c *config) {
		if cl, ok := p.Claim(spec.TLSS2SMinVersion); ok {
			c.minTLS = cl.Params.TLSVersion("min")
		}
	}
}

// WithMinTLSVersion sets the TLS floor directly (a crypto/tls constant).
func WithMinTLSVersion(v uint16) Option { return func(c *config) { c.minTLS = v } }

// WithHost pins a remote domain to an address ("127.0.0.1:5269"); pinned
// domains are never looked up in DNS.
func WithHost(domain, addr string) Option {
	return func(c *config) {
		if c.hosts == nil {
			c.hosts = map[string]string{}
		}
		c.hosts[strings.ToLower(domain)] = addr
	}
}

// WithStaticHostsOnly makes domains without a WithHost entry unreachable
// instead of looking them up in DNS: a test or an embedded server then
// never sends a packet anywhere it was not told to.
func WithStaticHostsOnly() Option { return func(c *config) { c.staticOnly = true } }

// WithResolver sets the DNS resolver (default net.DefaultResolver).
func WithResolver(r Resolver) Option { return func(c *config) { c.resolver = r } }

// WithDialbackSecret sets the XEP-0220 §2.1.1 secret; default random per
// process, which is enough unless several processes serve one domain.
func WithDialbackSecret(s []byte) Option { return func(c *config) { c.secret = s } }

// WithDeliver sets where inbound stanzas and bounces go.
func WithDeliver(f DeliverFunc) Option { return func(c *config) { c.deliver = f } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithSetupTimeout bounds DNS, connect, TLS and authentication of an
// outbound connection: stanzas waiting longer bounce.
func WithSetupTimeout(d time.Duration) Option { return func(c *config) { c.setupTimeout = d } }

// WithIdleTimeout closes outbound connections unused for d.
func WithIdleTimeout(d time.Duration) Option { return func(c *config) { c.idleTimeout = d } }

// WithIOTimeout is the deadline of every write, and of reads during
// negotiation.
func WithIOTimeout(d time.Duration) Option { return func(c *config) { c.ioTimeout = d } }

// WithQueueLimit bounds the stanzas waiting for one remote domain.
func WithQueueLimit(n int) Option { return func(c *config) { c.queueLimit = n } }

// WithMaxInbound bounds the inbound streams open at once; further
// connections are closed at once.
func WithMaxInbound(n int) Option { return func(c *config) { c.maxInbound = n } }

// WithMaxInboundPerAddr bounds the inbound streams from one address (an
// IPv6 address counts by its /64) in Serve (default 10; negative: none), so
// that one address cannot take every inbound slot from real peers.
func WithMaxInboundPerAddr(n int) Option { return func(c *config) { c.perAddr = n } }

// WithHandshakeTimeout bounds an inbound connection's stream header,
// STARTTLS and TLS handshake (default 10s).
func WithHandshakeTimeout(d time.Duration) Option { return func(c *config) { c.handshakeTimeout = d } }

// WithLocalDomains adds domains served besides the main one (e.g. the
// upload service's), to which remote servers may address stanzas.
func WithLocalDomains(d ...string) Option { return func(c *config) { c.local = append(c.local, d...) } }

// withMaxTLSVersion caps TLS (tests: a peer that only speaks TLS 1.1).
func withMaxTLSVersion(v uint16) Option { return func(c *config) { c.maxTLS = v } }

// ParseHost reads a host map entry "domain=host:port", the form of the
// --s2s-host flag.
func ParseHost(s string) (domain, addr string, err error) {
	domain, addr, ok := strings.Cut(s, "=")
	if !ok || domain == "" {
		return "", "", fmt.Errorf("s2s: host entry %q: want domain=host:port", s)
	}
	if _, err := jid.Parse(domain); err != nil || strings.ContainsAny(domain, "@/") {
		return "", "", fmt.Errorf("s2s: host entry %q: %q is not a domain", s, domain)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return "", "", fmt.Errorf("s2s: host entry %q: %q is not host:port", s, addr)
	}
	return strings.ToLower(domain), addr, nil
}

// Errors.
var (
	ErrNoRoute     = errors.New("s2s: no route to domain")
	ErrQueueFull   = errors.New("s2s: queue full")
	ErrClosed      = errors.New("s2s: server closed")
	ErrNoTLS       = errors.New("s2s: peer does not offer STARTTLS")
	ErrAuth        = errors.New("s2s: peer refused authentication")
	ErrNotLocal    = errors.New("s2s: sender is not a local domain")
	errSetupTimout = errors.New("s2s: connection setup timed out")
)

// Server federates one domain with remote servers.
type Server struct {
	domain string
	cfg    config

	mu          sync.Mutex
	out         map[string]*outConn
	in          map[*inConn]struct{}
	lns         []net.Listener
	closed      bool
	ctx         context.Context
	refusedFull fullRefusals
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// New makes a Server for domain.
func New(domain string, opts ...Option) (*Server, error) {
	d, err := jid.Parse(domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return nil, fmt.Errorf("s2s: new: %q is not a domain", domain)
	}
	cfg := config{
		minTLS: tls.VersionTLS12, setupTimeout: DefaultSetupTimeout, idleTimeout: DefaultIdleTimeout,
		ioTimeout: DefaultIOTimeout, queueLimit: DefaultQueueLimit, maxElement: DefaultMaxElement, maxInbound: DefaultMaxInbound,
		perAddr: DefaultMaxInboundPerAddr, handshakeTimeout: DefaultHandshakeTimeout,
		logger: slog.New(slog.DiscardHandler), resolver: net.DefaultResolver,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.certs) == 0 {
		return nil, errors.New("s2s: new: a certificate is required (STARTTLS is mandatory)")
	}
	if cfg.deliver == nil {
		return nil, errors.New("s2s: new: WithDeliver is required")
	}
	if cfg.minTLS < tls.VersionTLS12 && cfg.minTLS != 0 {
		cfg.logger.Warn("s2s: TLS floor below 1.2", "min", spec.TLSVersionName(cfg.minTLS))
	}
	if cfg.secret == nil {
		cfg.secret = make([]byte, 32)
		rand.Read(cfg.secret)
	}
	if cfg.dialer == nil {
		var nd net.Dialer
		cfg.dialer = func(ctx context.Context, addr string) (net.Conn, error) { return nd.DialContext(ctx, "tcp", addr) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{domain: d.Domainpart(), cfg: cfg, out: map[string]*outConn{}, in: map[*inConn]struct{}{}, ctx: ctx, cancel: cancel}
	srv.refusedFull.s = srv
	return srv, nil
}

// Domain is the local domain.
func (s *Server) Domain() string { return s.domain }

// isLocal reports whether domain is served here: the domain, a domain
// added with WithLocalDomains, or a subdomain of the domain (the server's
// components, such as upload.DOMAIN).
func (s *Server) isLocal(domain string) bool {
	domain = strings.ToLower(domain)
	if domain == s.domain || strings.HasSuffix(domain, "."+s.domain) {
		return true
	}
	for _, d := range s.cfg.local {
		if strings.EqualFold(domain, d) {
			return true
		}
	}
	return false
}

// Serve accepts inbound server connections on ln until Close. Unless ln
// is already guarded (package accept, as the reference server's are), it
// is wrapped: temporary accept errors such as EMFILE are retried with
// backoff and logged once per burst, and connections over the per-address
// cap are refused. An error is returned only when the listener died.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	if _, ok := ln.(*accept.Listener); !ok {
		ln = accept.Guard(ln, accept.WithName("s2s"), accept.WithLogger(s.cfg.logger), accept.WithPerAddr(s.cfg.perAddr))
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("s2s: accept: %w", err)
		}
		ic := newInConn(s, c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		if len(s.in) >= s.cfg.maxInbound {
			s.mu.Unlock()
			s.refusedFull.add()
			c.Close()
			continue
		}
		s.in[ic] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			ic.serve(s.ctx)
			s.mu.Lock()
			delete(s.in, ic)
			s.mu.Unlock()
		}()
	}
}

// fullRefusals logs inbound streams refused because maxInbound are open,
// at most once per interval with the count.
type fullRefusals struct {
	s     *Server
	mu    sync.Mutex
	n     int
	timer *time.Timer
}

func (f *fullRefusals) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timer == nil {
		f.s.cfg.logger.Warn("s2s: inbound streams refused: too many open", "max", f.s.cfg.maxInbound, "count", 1)
		f.timer = time.AfterFunc(accept.RefusalInterval, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.n > 0 {
				f.s.cfg.logger.Warn("s2s: inbound streams refused: too many open", "max", f.s.cfg.maxInbound, "count", f.n, "in_last", accept.RefusalInterval)
			}
			f.n, f.timer = 0, nil
		})
		return
	}
	f.n++
}

// Send routes st to its remote domain. It returns at once: the stanza is
// written when the connection is ready, or bounced to its sender through
// the Deliver function. Errors are returned only for stanzas that cannot be
// queued at all (no bounce is made for those).
func (s *Server) Send(ctx context.Context, st Stanza) error {
	if !s.isLocal(st.From.Domainpart()) {
		return fmt.Errorf("s2s: send: %w: %q", ErrNotLocal, st.From.Domainpart())
	}
	domain := strings.ToLower(st.To.Domainpart())
	if domain == "" || s.isLocal(domain) {
		return fmt.Errorf("s2s: send: %q is not a remote domain", domain)
	}
	local := strings.ToLower(st.From.Domainpart())
	for {
		o, err := s.outFor(local, domain)
		if err != nil {
			return err
		}
		ok, err := o.enqueue(st)
		if err != nil {
			return fmt.Errorf("s2s: send: %w", err)
		}
		if ok {
			return nil
		}
		// o died between the lookup and the enqueue: take the next one.
	}
}

// outFor returns the stream from local (one of our domains) to domain,
// starting one if needed: each pair has its own stream, authenticated for
// that local domain (RFC 6120 §4.7.1, XEP-0220 §2.1).
func (s *Server) outFor(local, domain string) (*outConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	key := local + " " + domain
	o := s.out[key]
	if o == nil || o.isDead() {
		o = newOutConn(s, local, domain)
		s.out[key] = o
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			o.run(s.ctx)
		}()
	}
	return o, nil
}

func (s *Server) dropOut(o *outConn) {
	s.mu.Lock()
	if key := o.local + " " + o.domain; s.out[key] == o {
		delete(s.out, key)
	}
	s.mu.Unlock()
}

// bounce returns stanzas to their local senders.
func (s *Server) bounce(sts []Stanza, cond stanza.Condition, text string) {
	for _, st := range sts {
		if st.bounceable() {
			s.cfg.deliver(s.ctx, Bounce(st, cond, text))
		}
	}
}

// verify asks domain's authoritative server whether key is the dialback key
// it made, for our domain local, on the stream id (XEP-0220 §2.3), over our
// outbound stream from local.
func (s *Server) verify(ctx context.Context, local, domain, id, key string) (bool, error) {
	o, err := s.outFor(strings.ToLower(local), domain)
	if err != nil {
		return false, err
	}
	return o.verify(ctx, id, key)
}

// dialbackKey is XEP-0220 §2.1.1's recommended key:
// HMAC-SHA256(SHA256(secret), receiving + " " + originating + " " + streamID).
func (s *Server) dialbackKey(receiving, originating, id string) string {
	k := sha256.Sum256(s.cfg.secret)
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(receiving + " " + originating + " " + id))
	return hex.EncodeToString(m.Sum(nil))
}

// resolve lists the addresses to try for domain, in order.
func (s *Server) resolve(ctx context.Context, domain string) ([]string, error) {
	if a, ok := s.cfg.hosts[domain]; ok {
		return []string{a}, nil
	}
	if s.cfg.staticOnly {
		return nil, fmt.Errorf("%w: %s has no static host entry", ErrNoRoute, domain)
	}
	// RFC 6120 §3.2.1: SRV first; "." as the only target means no service.
	_, srvs, err := s.cfg.resolver.LookupSRV(ctx, "xmpp-server", "tcp", domain)
	if err == nil && len(srvs) > 0 {
		if len(srvs) == 1 && srvs[0].Target == "." {
			return nil, fmt.Errorf("%w: %s announces no XMPP service", ErrNoRoute, domain)
		}
		var addrs []string
		for _, srv := range srvs {
			addrs = append(addrs, net.JoinHostPort(strings.TrimSuffix(srv.Target, "."), strconv.Itoa(int(srv.Port))))
		}
		return addrs, nil
	}
	// §3.2.2: fall back to the domain's addresses on the default port.
	hosts, err := s.cfg.resolver.LookupHost(ctx, domain)
	if err != nil || len(hosts) == 0 {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoRoute, domain, err)
	}
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, net.JoinHostPort(h, defaultPort))
	}
	return addrs, nil
}

// verifyPeer reports whether the peer's certificate chain verifies for
// domain against the configured roots.
func (s *Server) verifyPeer(cs tls.ConnectionState, domain string) bool {
	if len(cs.PeerCertificates) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: s.cfg.roots, Intermediates: inter, DNSName: domain,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err == nil
}

// Close stops listening, closes every stream and waits for them; stanzas
// still queued bounce.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Stats counts the streams.
type Stats struct {
	Outbound, Inbound int
}

// Stats reports the open streams.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Outbound: len(s.out), Inbound: len(s.in)}
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
