package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/accept"
	"github.com/xmppcheck/xmppcheck/reference/clock"
	"github.com/xmppcheck/xmppcheck/reference/im"
	"github.com/xmppcheck/xmppcheck/reference/logburst"
	"github.com/xmppcheck/xmppcheck/reference/metrics"
	"github.com/xmppcheck/xmppcheck/reference/ratelimit"
	"github.com/xmppcheck/xmppcheck/reference/scramauth"
)

// Limits protect the listener. Zero fields take the defaults.
type Limits struct {
	// MaxStanzaSize is the largest top-level element accepted, in bytes;
	// larger ones end the stream with policy-violation (default 256 KiB).
	MaxStanzaSize int
	// MaxDepth is the deepest element nesting accepted (default 64).
	MaxDepth int
	// AuthTimeout bounds the time from connection to a bound resource
	// (default 30s): slow or idle unauthenticated clients are dropped.
	AuthTimeout time.Duration
	// HandshakeTimeout bounds the time from connection to an established
	// TLS layer: stream header, STARTTLS and the TLS handshake (default
	// 10s), so that a slowloris holds a descriptor for seconds only.
	HandshakeTimeout time.Duration
	// IdleTimeout drops bound sessions that send nothing, not even a white
	// space keepalive, for this long (default 30m).
	IdleTimeout time.Duration
	// WriteTimeout bounds every write to a client (default 30s).
	WriteTimeout time.Duration
	// MaxConnsPerAddr caps concurrent connections from one IP address
	// (default 100; negative: no cap).
	MaxConnsPerAddr int
	// MaxQueue is the most output queued for a slow client before it is
	// disconnected, in bytes (default 4 MiB).
	MaxQueue int
	// MaxAuthAttempts per stream before it is closed (default 3; RFC 6120
	// §6.4.5 asks for 2 to 5).
	MaxAuthAttempts int
}

// WithDefaults returns l with zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxStanzaSize, 256<<10)
	def(&l.MaxDepth, 64)
	defd(&l.AuthTimeout, 30*time.Second)
	defd(&l.HandshakeTimeout, 10*time.Second)
	defd(&l.IdleTimeout, 30*time.Minute)
	defd(&l.WriteTimeout, 30*time.Second)
	def(&l.MaxConnsPerAddr, 100)
	def(&l.MaxQueue, 4<<20)
	def(&l.MaxAuthAttempts, 3)
	return l
}

// Config configures a Listener.
type Config struct {
	Domain string
	// TLS is the server's TLS configuration; its MinVersion is the policy's
	// floor (tls.c2s-min-version).
	TLS    *tls.Config
	Router *im.Router
	Logger *slog.Logger
	// Metrics must be set.
	Metrics *metrics.Metrics
	Clock   clock.Clock
	// BruteForce counts failed logins per address (nil: no protection).
	BruteForce *ratelimit.Window
	// Hashes are the SCRAM hashes offered, strongest first.
	Hashes []string
	// NoPlus disables the -PLUS mechanisms.
	NoPlus bool
	// Iterations for fake credentials of unknown users.
	Iterations int
	// FakeKey keys fake SCRAM salts.
	FakeKey []byte
	Limits  Limits
}

// Listener serves c2s connections.
type Listener struct {
	cfg    Config
	cap    *ratelimit.Cap
	burst  *logburst.Logger
	connID atomic.Uint64
	prefix string

	mu       sync.Mutex
	sessions map[*session]struct{}
	lns      []net.Listener
	closed   bool
	wg       sync.WaitGroup
}

// New returns a listener.
func New(cfg Config) *Listener {
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if len(cfg.Hashes) == 0 {
		cfg.Hashes = scramauth.Hashes()
	}
	l := &Listener{cfg: cfg, sessions: map[*session]struct{}{}}
	l.cap = ratelimit.NewCap(cfg.Limits.MaxConnsPerAddr)
	l.burst = logburst.New(cfg.Logger, 0)
	var b [2]byte
	_, _ = randRead(b[:])
	l.prefix = strconv.FormatUint(uint64(b[0])<<8|uint64(b[1]), 36)
	return l
}

// Serve accepts connections on ln until it is closed. directTLS selects
// XEP-0368 direct TLS instead of STARTTLS.
func (l *Listener) Serve(ctx context.Context, ln net.Listener, directTLS bool) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	l.lns = append(l.lns, ln)
	l.mu.Unlock()
	name := "c2s"
	if directTLS {
		name = "c2s_tls"
	}
	for {
		// ln is guarded (package accept): temporary errors such as EMFILE
		// are retried there; any error reaching here means the listener
		// is dead.
		conn, err := ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("c2s: %s: accept: %w", name, err)
		}
		l.cfg.Metrics.Connections.WithLabelValues(name).Inc()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.handle(ctx, conn, directTLS)
		}()
	}
}

func (l *Listener) handle(ctx context.Context, conn net.Conn, directTLS bool) {
	ip := limitKey(conn.RemoteAddr())
	if !l.cap.Acquire(ip) {
		l.cfg.Metrics.ConnectionsRefused.WithLabelValues("per_address_cap").Inc()
		l.burst.Warn("connections refused", "c2s per_address_cap", []any{"listener", "c2s", "reason", "per_address_cap"},
			"listener", "c2s", "reason", "per_address_cap")
		if !directTLS {
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			conn.Write(refusal(l.cfg.Domain))
		}
		conn.Close()
		return
	}
	defer l.cap.Release(ip)
	s := newSession(l, conn, ip)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		conn.Close()
		return
	}
	l.sessions[s] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.sessions, s)
		l.mu.Unlock()
	}()
	s.run(ctx, directTLS)
}

// Close stops accepting, closes every session and waits for them to end.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	for _, ln := range l.lns {
		ln.Close()
	}
	for s := range l.sessions {
		s.Close("system-shutdown", "the server is shutting down")
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.mu.Lock()
		for s := range l.sessions {
			s.raw.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	}
	return nil
}

// Open returns the number of open connections.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sessions)
}

func (l *Listener) newID() string {
	return l.prefix + "-" + strconv.FormatUint(l.connID.Add(1), 36)
}

// limitKey is the address the per-address limits (connections, failed
// logins, registrations) count by (accept.Key: an IPv4 address, or the /64
// of an IPv6 address). It is also what a failed-login log line shows.
func limitKey(a net.Addr) string { return accept.Key(a) }

// TLSConfig returns the listener's TLS configuration (for benchmarks).
func (l *Listener) TLSConfig() *tls.Config { return l.cfg.TLS }
