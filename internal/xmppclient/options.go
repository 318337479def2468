package xmppclient

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// TLSMode says how a client secures its stream.
type TLSMode int

const (
	// StartTLS opens a plaintext stream and upgrades it (RFC 6120 §5). The
	// default. Dial fails with ErrNoStartTLS if the server does not offer it.
	StartTLS TLSMode = iota
	// DirectTLS starts TLS at once, before the stream (XEP-0368), with ALPN
	// "xmpp-client".
	DirectTLS
	// NoTLS never negotiates TLS. It exists to test that a server refuses to
	// authenticate a plaintext stream; never send a real password over it.
	NoTLS
)

func (m TLSMode) String() string {
	switch m {
	case StartTLS:
		return "starttls"
	case DirectTLS:
		return "direct"
	case NoTLS:
		return "none"
	}
	return "unknown"
}

// Default timeouts.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxElementSize bounds what the client reads at once: one
	// top-level element with everything in it (text runs, attributes,
	// children), the stream header, or a whitespace run between elements.
	DefaultMaxElementSize = 1 << 20
	// MaxDepth is the deepest element nesting the client reads.
	MaxDepth = 256
	// MaxTokens is the most XML tokens (start tags, end tags, text runs)
	// one top-level element may hold: each costs memory beyond its bytes
	// (a roster of 1,000 items has about 7,000).
	MaxTokens = 1 << 15
)

// DefaultMechanisms are the SASL mechanisms tried, in order of preference,
// when WithMechanisms is not given.
var DefaultMechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}

type config struct {
	domain      string
	tlsMode     TLSMode
	tlsConfig   *tls.Config
	minVersion  uint16
	maxVersion  uint16
	insecure    bool
	roots       *x509.CertPool
	serverName  string
	localAddr   netip.Addr
	timeout     time.Duration
	idleTimeout time.Duration
	transcript  io.Writer
	logger      *slog.Logger
	mechanisms  []string
	resource    string
	scramCache  *SCRAMCache
	lang        string
	maxElement  int
}

// Option configures a Client (functional options).
type Option func(*config)

// WithDomain sets the XMPP domain the stream is opened to ("to" of the
// stream header) and the TLS server name. Default: the host part of the
// dialled address if it is a name, "localhost" if it is an IP address.
func WithDomain(domain string) Option { return func(c *config) { c.domain = domain } }

// WithTLSMode selects STARTTLS (default), direct TLS or no TLS.
func WithTLSMode(m TLSMode) Option { return func(c *config) { c.tlsMode = m } }

// WithTLSConfig sets the base TLS configuration; it is cloned, and the other
// TLS options are applied on top of it.
func WithTLSConfig(cfg *tls.Config) Option { return func(c *config) { c.tlsConfig = cfg } }

// WithTLSVersions pins the TLS versions offered (tls.VersionTLS10 …
// tls.VersionTLS13). Zero leaves a bound at Go's default.
func WithTLSVersions(minVersion, maxVersion uint16) Option {
	return func(c *config) { c.minVersion, c.maxVersion = minVersion, maxVersion }
}

// WithInsecureSkipVerify accepts any server certificate. For tests against
// servers with self-signed certificates only.
func WithInsecureSkipVerify() Option { return func(c *config) { c.insecure = true } }

// WithRootCAs verifies the server certificate against pool.
func WithRootCAs(pool *x509.CertPool) Option { return func(c *config) { c.roots = pool } }

// WithServerName sets the TLS server name (SNI and verification) when it
// differs from the domain.
func WithServerName(name string) Option { return func(c *config) { c.serverName = name } }

// WithLocalAddr binds the client's side of the TCP connection to addr (for
// example 127.0.0.7), so that many clients can pass the 64k ports limit of
// one source address, or so that a test knows which address the server saw.
func WithLocalAddr(addr netip.Addr) Option { return func(c *config) { c.localAddr = addr } }

// WithTimeout bounds every network operation: each read or write, and each
// request/response round trip, ends with ErrTimeout after d (or at the
// context's deadline if that is sooner). Default DefaultTimeout.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithIdleTimeout bounds how long the background reader of a bound session
// waits for the next element before it gives the connection up. Default
// DefaultIdleTimeout.
func WithIdleTimeout(d time.Duration) Option { return func(c *config) { c.idleTimeout = d } }

// WithTranscript records the XML sent and received on w, one element per
// line, with passwords and SASL payloads redacted (see Transcript format in
// the package documentation). Writes to w are serialised.
func WithTranscript(w io.Writer) Option { return func(c *config) { c.transcript = w } }

// WithLogger sets the logger; every record carries the connection id.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMechanisms sets the SASL mechanisms the client may use, in order of
// preference: SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512, their -PLUS
// variants (channel binding tls-exporter on TLS 1.3, tls-unique below), and
// PLAIN (only when asked for; never over NoTLS unless the caller insists).
func WithMechanisms(names ...string) Option {
	return func(c *config) { c.mechanisms = append([]string(nil), names...) }
}

// WithResource asks the server for this resource at bind time (RFC 6120
// §7.7). Default: the server picks one.
func WithResource(r string) Option { return func(c *config) { c.resource = r } }

// WithSCRAMCache shares derived SCRAM keys between clients (RFC 5802 §5.1
// allows a client to cache them), so that repeated logins of the same
// account do not repeat the PBKDF2 work. The load generator uses it.
func WithSCRAMCache(cache *SCRAMCache) Option { return func(c *config) { c.scramCache = cache } }

// WithLang sets xml:lang of the stream. Default "en".
func WithLang(lang string) Option { return func(c *config) { c.lang = lang } }

// WithMaxElementSize bounds every token the client reads, in bytes: a
// top-level element (its text runs, attributes and children included), the
// stream header, a whitespace run between elements (default
// DefaultMaxElementSize, 1 MiB). A hostile server sending more ends the
// connection with an error wrapping ErrTooLarge and ErrProtocol, so the
// client's memory stays bounded.
func WithMaxElementSize(n int) Option { return func(c *config) { c.maxElement = n } }
