package reference

import (
	"crypto/tls"
	"io"
	"log/slog"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/clock"
)

// Limits protect the server. Zero fields take the defaults given.
type Limits struct {
	// MaxStanzaSize in bytes; larger stanzas end the stream with
	// policy-violation (default 256 KiB).
	MaxStanzaSize int `yaml:"max_stanza_size"`
	// MaxDepth of element nesting (default 64).
	MaxDepth int `yaml:"max_depth"`
	// AuthTimeout: time from connection to a bound resource (default 30s).
	AuthTimeout time.Duration `yaml:"auth_timeout"`
	// HandshakeTimeout: time from connection to an established TLS layer
	// on c2s and s2s: stream header, STARTTLS, TLS handshake (default 10s).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// IdleTimeout: bound sessions silent this long are closed (default 30m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WriteTimeout for every write (default 30s).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxConnsPerAddr: concurrent connections per IP address (an IPv6
	// address counts by its /64) on each of c2s, direct TLS, HTTPS upload
	// and metrics (default 100; -1 none).
	MaxConnsPerAddr int `yaml:"max_conns_per_addr"`
	// MaxS2SConnsPerAddr: concurrent inbound s2s connections per IP
	// address (default 10; -1 none).
	MaxS2SConnsPerAddr int `yaml:"max_s2s_conns_per_addr"`
	// MaxPreAuth: connections not yet authenticated (c2s before resource
	// binding, s2s before dialback or SASL, every HTTPS upload connection)
	// held at once over all listeners; more are refused at accept, so that
	// descriptors stay in reserve for authenticated sessions, the store
	// and the admin socket (default: half the open-file limit, at least
	// 64; -1 none).
	MaxPreAuth int `yaml:"max_preauth"`
	// MaxQueue: output bytes queued for a slow client before it is
	// disconnected (default 4 MiB).
	MaxQueue int `yaml:"max_queue"`
	// MaxAuthAttempts per stream (default 3).
	MaxAuthAttempts int `yaml:"max_auth_attempts"`
	// MaxOffline messages per user (default 1000).
	MaxOffline int `yaml:"max_offline"`
	// MaxRosterItems per user (default 1000).
	MaxRosterItems int `yaml:"max_roster_items"`
	// MaxVCard bytes (default 64 KiB).
	MaxVCard int `yaml:"max_vcard"`
}

type config struct {
	dataDir, keyFile, domain string
	c2s, c2sTLS              *string
	s2s, http, metrics       string
	control                  *string
	logger                   *slog.Logger
	testClock                bool
	clock                    clock.Clock
	limits                   Limits
	cert                     *tls.Certificate
	hashes                   []string
	noPlus                   bool
	noRegistration           bool
	s2sHosts                 map[string]string // domain → host:port
	s2sStaticOnly            bool
	uploadURL                string
	uploadMaxSize            int64
	uploadQuota              int64
}

// Option configures a Server.
type Option func(*config)

// WithDataDir sets the data directory (required): the store, the generated
// certificate and the control socket live there.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithKeyFile sets the at-rest key file (required), created on first start.
// It must not be inside the data directory.
func WithKeyFile(path string) Option { return func(c *config) { c.keyFile = path } }

// WithDomain sets the XMPP domain (default "localhost").
func WithDomain(d string) Option { return func(c *config) { c.domain = d } }

// WithC2SAddr sets the STARTTLS c2s listener (default "127.0.0.1:5222";
// "" disables it; port 0 picks one).
func WithC2SAddr(a string) Option { return func(c *config) { c.c2s = &a } }

// WithC2STLSAddr sets the direct TLS c2s listener, XEP-0368 (default
// "127.0.0.1:5223"; "" disables it).
func WithC2STLSAddr(a string) Option { return func(c *config) { c.c2sTLS = &a } }

// WithS2SAddr sets the s2s listener (default off).
func WithS2SAddr(a string) Option { return func(c *config) { c.s2s = a } }

// WithS2SHost routes s2s traffic for domain to addr ("127.0.0.1:5269")
// instead of looking the domain up in DNS (the --s2s-host flag).
func WithS2SHost(domain, addr string) Option {
	return func(c *config) {
		if c.s2sHosts == nil {
			c.s2sHosts = map[string]string{}
		}
		c.s2sHosts[domain] = addr
	}
}

// WithS2SStaticHostsOnly makes domains without a WithS2SHost entry
// unreachable instead of looked up in DNS: an embedded or test server then
// sends nothing anywhere it was not told to.
func WithS2SStaticHostsOnly() Option { return func(c *config) { c.s2sStaticOnly = true } }

// WithUploadURL sets the base of HTTP File Upload slot URLs
// ("https://upload.example.org:5443") when the listener's address is not
// what clients should use.
func WithUploadURL(u string) Option { return func(c *config) { c.uploadURL = u } }

// WithUploadLimits sets the largest file a slot is issued for and the bytes
// one user may hold in files and open slots (defaults 100 MiB and 1 GiB);
// zero keeps a default.
func WithUploadLimits(maxFileSize, quota int64) Option {
	return func(c *config) { c.uploadMaxSize, c.uploadQuota = maxFileSize, quota }
}

// WithHTTPAddr sets the HTTP File Upload listener (default off).
func WithHTTPAddr(a string) Option { return func(c *config) { c.http = a } }

// WithMetricsAddr serves Prometheus metrics at /metrics (default off). It
// must be a loopback address.
func WithMetricsAddr(a string) Option { return func(c *config) { c.metrics = a } }

// WithControlSocket sets the admin control socket path (default
// DATA/admin.sock; "" disables it).
func WithControlSocket(path string) Option { return func(c *config) { c.control = &path } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithLogWriter logs in slog's text format at level info to w.
func WithLogWriter(w io.Writer) Option {
	return func(c *config) { c.logger = slog.New(slog.NewTextHandler(w, nil)) }
}

// WithTestClock runs the server on a test clock that starts at the current
// time and moves only when advanced (Server.TestClock, or `xmppcheck admin
// clock advance` over the control socket). Never for production.
func WithTestClock() Option { return func(c *config) { c.testClock = true } }

// WithClock runs the server on clock c.
func WithClock(cl clock.Clock) Option { return func(c *config) { c.clock = cl } }

// WithLimits sets the limits.
func WithLimits(l Limits) Option { return func(c *config) { c.limits = l } }

// WithTLSCertificate uses cert instead of the self-signed certificate the
// server otherwise generates into the data directory.
func WithTLSCertificate(cert tls.Certificate) Option { return func(c *config) { c.cert = &cert } }

// WithHashes limits the SCRAM hashes offered and stored (spec.HashSHA1,
// spec.HashSHA256; default both).
func WithHashes(h ...string) Option { return func(c *config) { c.hashes = h } }

// WithoutChannelBinding stops offering the SCRAM -PLUS mechanisms.
func WithoutChannelBinding() Option { return func(c *config) { c.noPlus = true } }

// WithoutRegistration turns in-band registration (XEP-0077) off.
func WithoutRegistration() Option { return func(c *config) { c.noRegistration = true } }
