package reference

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xmppcheck/xmppcheck/reference/accept"
	"github.com/xmppcheck/xmppcheck/reference/c2s"
	"github.com/xmppcheck/xmppcheck/reference/clock"
	"github.com/xmppcheck/xmppcheck/reference/control"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/im"
	"github.com/xmppcheck/xmppcheck/reference/metrics"
	"github.com/xmppcheck/xmppcheck/reference/ratelimit"
	"github.com/xmppcheck/xmppcheck/reference/redact"
	"github.com/xmppcheck/xmppcheck/reference/scramauth"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/spec"
)

// Errors.
var (
	ErrNotStarted = errors.New("reference: server not started")
	ErrUserExists = im.ErrUserExists
	ErrNoSuchUser = im.ErrNoSuchUser
)

// Addrs are the bound listener addresses ("" when not listening).
type Addrs struct {
	C2S     string // STARTTLS c2s
	C2STLS  string // direct TLS c2s (XEP-0368)
	S2S     string
	HTTP    string // HTTP File Upload
	Metrics string // Prometheus /metrics
	Control string // admin control socket path
}

// Server is the reference server.
type Server struct {
	pol *spec.Policy
	cfg config
	set settings

	mu        sync.Mutex
	started   bool
	closed    bool
	ctx       context.Context
	cancel    context.CancelFunc
	clock     clock.Clock
	testClock *clock.Test
	key       []byte
	store     *store.Store
	cert      tls.Certificate
	metrics   *metrics.Metrics
	router    *im.Router
	c2s       *c2s.Listener
	addrs     Addrs
	lns       []net.Listener
	httpSrv   *http.Server
	ctl       *control.Server
	stopsMu   sync.Mutex
	stops     []func()
	comps     []host.Component
	certMade  bool
	keyMade   bool
	log       *slog.Logger
	compactor *compactor
	budget    *accept.Budget
	perAddr   int
	refused   func(string)
	failOnce  sync.Once
	failErr   error
	done      chan struct{}
}

// New returns a server configured from pol. It does not touch the disk or
// the network until Start.
func New(pol *spec.Policy, opts ...Option) (*Server, error) {
	if pol == nil {
		return nil, errors.New("reference: no policy")
	}
	cfg := config{domain: "localhost"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dataDir == "" {
		return nil, errors.New("reference: WithDataDir is required")
	}
	if cfg.keyFile == "" {
		return nil, errors.New("reference: WithKeyFile is required")
	}
	if cfg.c2s == nil {
		a := "127.0.0.1:5222"
		cfg.c2s = &a
	}
	if cfg.c2sTLS == nil {
		a := "127.0.0.1:5223"
		cfg.c2sTLS = &a
	}
	if cfg.control == nil {
		p := filepath.Join(cfg.dataDir, control.SocketName)
		cfg.control = &p
	}
	if cfg.metrics != "" {
		if err := requireLoopback(cfg.metrics); err != nil {
			return nil, fmt.Errorf("reference: metrics: %w", err)
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	// The one logging path: whatever logs an error, its text reaches the
	// log without the network addresses Go's errors carry.
	cfg.logger = slog.New(redact.Handler(cfg.logger.Handler()))
	set, err := settingsFrom(pol)
	if err != nil {
		return nil, err
	}
	if len(cfg.hashes) == 0 {
		cfg.hashes = scramauth.Hashes()
	}
	if !slices.Contains(cfg.hashes, set.hash) {
		cfg.hashes = append(cfg.hashes, set.hash)
	}
	return &Server{pol: pol, cfg: cfg, set: set, log: cfg.logger, done: make(chan struct{})}, nil
}

func requireLoopback(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if h == "localhost" {
		return nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}

// Start opens the store, binds every listener and returns. ctx bounds only
// the start; the server runs until Close.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("reference: already started")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.closeLocked()
		}
	}()
	switch {
	case s.cfg.clock != nil:
		s.clock = s.cfg.clock
	case s.cfg.testClock:
		s.testClock = clock.NewTest(time.Now())
		s.clock = s.testClock
		s.log.Warn("running on the TEST CLOCK: time moves only when advanced (xmppcheck admin clock advance); never use this in production")
	default:
		s.clock = clock.Real()
	}
	// A refused start changes nothing on disk: what it created goes.
	storePath := filepath.Join(s.cfg.dataDir, store.FileName)
	_, serr := os.Lstat(storePath)
	storeMade := errors.Is(serr, fs.ErrNotExist)
	defer func() {
		if err == nil {
			return
		}
		if s.keyMade {
			os.Remove(s.cfg.keyFile)
		}
		if storeMade {
			if s.store != nil {
				s.store.Close()
			}
			os.Remove(storePath)
		}
		if s.certMade {
			os.Remove(filepath.Join(s.cfg.dataDir, CertFile))
			os.Remove(filepath.Join(s.cfg.dataDir, KeyFile))
		}
	}()
	if storeMade {
		// No store, but files of accounts (uploads) exist: the store was
		// lost, and starting empty would orphan them and free every
		// address for someone else.
		if n := countFiles(filepath.Join(s.cfg.dataDir, "upload"), ".meta"); n > 0 {
			return fmt.Errorf("reference: %s is missing but %s holds %d uploads of existing accounts: restore the store from a backup",
				storePath, filepath.Join(s.cfg.dataDir, "upload"), n)
		}
	}
	if s.key, s.keyMade, err = store.LoadOrCreateKey(s.cfg.keyFile, s.cfg.dataDir); err != nil {
		return err
	}
	if s.store, err = store.Open(s.cfg.dataDir, s.key); err != nil {
		return err
	}
	needTLS := *s.cfg.c2s != "" || *s.cfg.c2sTLS != "" || s.cfg.s2s != "" || s.cfg.http != ""
	if s.cfg.cert != nil {
		s.cert = *s.cfg.cert
	} else if needTLS {
		if s.cert, s.certMade, err = loadOrCreateCert(s.cfg.dataDir, s.cfg.domain); err != nil {
			return err
		}
	}
	s.metrics = metrics.New()
	lim := s.cfg.limits
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&lim.MaxOffline, 1000)
	def(&lim.MaxRosterItems, 1000)
	def(&lim.MaxVCard, 64<<10)
	def(&lim.MaxConnsPerAddr, 100)
	def(&lim.MaxS2SConnsPerAddr, 10)
	if lim.MaxPreAuth == 0 {
		lim.MaxPreAuth = 64
		if n, err := fileLimit(); err == nil && n/2 > 64 {
			lim.MaxPreAuth = int(min(n/2, 1<<30))
		}
	}
	s.budget = accept.NewBudget(lim.MaxPreAuth)
	s.perAddr = lim.MaxConnsPerAddr
	s.refused = func(reason string) { s.metrics.ConnectionsRefused.WithLabelValues(reason).Inc() }
	s.router, err = im.New(im.Config{
		Domain: s.cfg.domain, Store: s.store, Clock: s.clock, Logger: s.log, Metrics: s.metrics,
		MaxOffline: lim.MaxOffline, MaxRosterItems: lim.MaxRosterItems, MaxVCard: lim.MaxVCard,
		Iterations: s.set.iterations, Hashes: s.cfg.hashes,
		Registration: im.Registration{
			Required: s.set.regRequired, Optional: s.set.regOptional,
			RateMax: s.set.regMax, RateWindow: s.set.regWindow,
			Disabled: s.cfg.noRegistration,
		},
	})
	if err != nil {
		return err
	}
	s.compactor = newCompactor(s.store, s.log)
	// Deletes are real: freed pages are rewritten away soon after.
	s.store.OnDelete(s.compactor.soon)
	var bf *ratelimit.Window
	if s.set.bfMax > 0 {
		bf = ratelimit.NewWindow(s.clock, s.set.bfMax, s.set.bfWindow)
	}
	s.c2s = c2s.New(c2s.Config{
		Domain: s.cfg.domain, TLS: s.tlsConfig(s.set.c2sTLSMin, []string{"xmpp-client"}),
		Router: s.router, Logger: s.log, Metrics: s.metrics, Clock: s.clock,
		BruteForce: bf, Hashes: orderHashes(s.cfg.hashes), NoPlus: s.cfg.noPlus,
		Iterations: s.set.iterations, FakeKey: store.DeriveKey(s.key, "scram fake salts v1"),
		Limits: c2s.Limits{
			MaxStanzaSize: lim.MaxStanzaSize, MaxDepth: lim.MaxDepth, AuthTimeout: lim.AuthTimeout, HandshakeTimeout: lim.HandshakeTimeout,
			IdleTimeout: lim.IdleTimeout, WriteTimeout: lim.WriteTimeout, MaxConnsPerAddr: lim.MaxConnsPerAddr,
			MaxQueue: lim.MaxQueue, MaxAuthAttempts: lim.MaxAuthAttempts,
		},
	})
	for _, l := range []struct {
		addr, name string
		direct     bool
		dst        *string
	}{{*s.cfg.c2s, "c2s", false, &s.addrs.C2S}, {*s.cfg.c2sTLS, "c2s_tls", true, &s.addrs.C2STLS}} {
		if l.addr == "" {
			continue
		}
		// c2s keeps its own per-address cap (it answers with a stream
		// error); the guard adds the retries and the budget.
		ln, err := s.listen(l.name, l.addr, 0, true)
		if err != nil {
			return fmt.Errorf("reference: c2s listener: %w", err)
		}
		s.lns = append(s.lns, ln)
		*l.dst = ln.Addr().String()
		go func() {
			if err := s.c2s.Serve(s.ctx, ln, l.direct); err != nil {
				s.Fail(l.name+" listener", err)
			}
		}()
	}
	// Offline retention (offline.retention), on the server's clock.
	maxAge := s.set.offlineMaxAge
	s.everyLocked("offline-purge", purgeInterval(maxAge), func(ctx context.Context, now time.Time) {
		n, err := s.router.PurgeOffline(now, maxAge)
		if err != nil {
			s.log.Error("offline purge failed", "err", err)
			return
		}
		if n > 0 {
			s.log.Info("offline messages purged", "count", n, "max_age", spec.FormatDuration(maxAge))
			s.compactor.now()
		}
	})
	h := &hostImpl{s: s}
	for _, c := range []struct {
		addr, name string
		mk         host.NewComponent
		dst        *string
	}{{s.cfg.s2s, "s2s", s2sComponent(&s.cfg), &s.addrs.S2S}, {s.cfg.http, "upload", uploadComponent(&s.cfg), &s.addrs.HTTP}} {
		if c.addr == "" {
			continue
		}
		comp, err := c.mk(h, c.addr)
		if err != nil {
			return fmt.Errorf("reference: %s: %w", c.name, err)
		}
		if err := comp.Start(ctx); err != nil {
			return fmt.Errorf("reference: %s: %w", c.name, err)
		}
		s.comps = append(s.comps, comp)
		*c.dst = comp.Addr().String()
	}
	if s.cfg.metrics != "" {
		ln, err := s.listen("metrics", s.cfg.metrics, s.perAddr, false)
		if err != nil {
			return fmt.Errorf("reference: metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
		// net/http logs client addresses on errors: discard them.
		s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
		s.addrs.Metrics = ln.Addr().String()
		srv := s.httpSrv
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.Fail("metrics listener", err)
			}
		}()
	}
	if *s.cfg.control != "" {
		ctl, err := control.Listen(s.ctx, *s.cfg.control, store.DeriveKey(s.key, control.KeyLabel), s.control,
			control.WithLogger(s.log), control.WithOnDeath(func(err error) { s.Fail("admin control socket", err) }))
		if err != nil {
			return err
		}
		s.ctl = ctl
		s.addrs.Control = ctl.Path()
	}
	// Ports only: a listener's host could equal a client's address (both
	// 127.0.0.1 on loopback) and no log line may look like a client address.
	s.log.Info("reference server started", "domain", s.cfg.domain, "c2s_port", portOf(s.addrs.C2S),
		"c2s_tls_port", portOf(s.addrs.C2STLS), "s2s_port", portOf(s.addrs.S2S), "http_port", portOf(s.addrs.HTTP),
		"metrics_port", portOf(s.addrs.Metrics), "test_clock", s.testClock != nil,
		"tls_min", spec.TLSVersionName(s.set.c2sTLSMin))
	return nil
}

// listen binds a guarded TCP listener (package accept): temporary accept
// errors retried with backoff and logged once per burst, perAddr
// connections per address at most, and with preAuth a slot of the
// unauthenticated budget per connection until accept.Promote.
func (s *Server) listen(name, addr string, perAddr int, preAuth bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	opts := []accept.Option{accept.WithName(name), accept.WithLogger(s.log), accept.WithPerAddr(perAddr), accept.WithRefused(s.refused)}
	if preAuth {
		opts = append(opts, accept.WithBudget(s.budget))
	}
	return accept.Guard(ln, opts...), nil
}

// Fail takes the server down loudly: what (a listener) died with err. It
// logs at ERROR, closes the server, and Done is closed; Err returns the
// cause. Only the first failure counts.
func (s *Server) Fail(what string, err error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	s.failOnce.Do(func() {
		s.failErr = fmt.Errorf("reference: %s died: %w", what, redact.Wrap(err))
		s.log.Error("the server stops: a listener died", "listener", what, "err", err)
		go func() {
			s.Close()
			close(s.done)
		}()
	})
}

// Done is closed when the server stopped because of a failure (Fail).
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns why the server stopped by itself, or nil.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.failErr
	default:
		return nil
	}
}

// countFiles counts the files in dir whose names end in suffix.
func countFiles(dir, suffix string) int {
	es, _ := os.ReadDir(dir)
	n := 0
	for _, e := range es {
		if strings.HasSuffix(e.Name(), suffix) {
			n++
		}
	}
	return n
}

// orderHashes puts SHA-256 before SHA-1 (clients pick the first they know).
func orderHashes(h []string) []string {
	out := slices.Clone(h)
	slices.SortStableFunc(out, func(a, b string) int {
		if a == spec.HashSHA256 && b != spec.HashSHA256 {
			return -1
		}
		if b == spec.HashSHA256 && a != spec.HashSHA256 {
			return 1
		}
		return 0
	})
	return out
}

func (s *Server) tlsConfig(min uint16, alpn []string) *tls.Config {
	if min == 0 {
		min = s.set.c2sTLSMin
	}
	return &tls.Config{
		Certificates: []tls.Certificate{s.cert},
		MinVersion:   min,
		NextProtos:   alpn,
	}
}

func (s *Server) everyLocked(name string, interval time.Duration, job func(ctx context.Context, now time.Time)) {
	ctx := s.ctx
	stop := clock.Every(s.clock, interval, func(now time.Time) {
		if ctx.Err() == nil {
			job(ctx, now)
		}
	})
	s.stopsMu.Lock()
	s.stops = append(s.stops, stop)
	s.stopsMu.Unlock()
}

// Addrs returns the bound addresses.
func (s *Server) Addrs() Addrs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs
}

// Domain returns the XMPP domain.
func (s *Server) Domain() string { return s.cfg.domain }

// DataDir returns the data directory.
func (s *Server) DataDir() string { return s.cfg.dataDir }

// KeyFile returns the at-rest key file's path.
func (s *Server) KeyFile() string { return s.cfg.keyFile }

// Policy returns the policy the server was configured from.
func (s *Server) Policy() *spec.Policy { return s.pol }

// TestClock returns the test clock, or nil when the server runs on the real
// clock.
func (s *Server) TestClock() *clock.Test {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.testClock
}

// Created reports whether Start created the key file and the certificate
// (a first start).
func (s *Server) Created() (key, cert bool) { return s.keyMade, s.certMade }

// CreateUser creates an account.
func (s *Server) CreateUser(ctx context.Context, user, password string) error {
	r, err := s.running()
	if err != nil {
		return err
	}
	return r.CreateAccount(user, password, "")
}

// DeleteUser removes an account and everything it owns, as XEP-0077
// <remove/> does.
func (s *Server) DeleteUser(ctx context.Context, user string) error {
	r, err := s.running()
	if err != nil {
		return err
	}
	return r.RemoveAccount(ctx, user, nil)
}

// SetPassword replaces an account's password.
func (s *Server) SetPassword(ctx context.Context, user, password string) error {
	r, err := s.running()
	if err != nil {
		return err
	}
	n, err := r.NormalizeUsername(user)
	if err != nil {
		return err
	}
	return r.ChangePassword(n, password)
}

// Users lists the accounts.
func (s *Server) Users(ctx context.Context) ([]string, error) {
	if _, err := s.running(); err != nil {
		return nil, err
	}
	return s.store.Users()
}

// Dump writes every record of the store, opened with the key, as JSON lines
// (store.DumpRecord): the evidence of what the server keeps.
func (s *Server) Dump(w io.Writer) error {
	if _, err := s.running(); err != nil {
		return err
	}
	return s.store.Dump(w)
}

// Compact rewrites the store file so that no freed page keeps old sealed
// values (it also runs by itself shortly after deletions).
func (s *Server) Compact() error {
	if _, err := s.running(); err != nil {
		return err
	}
	return s.store.Compact()
}

func (s *Server) running() (*im.Router, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.closed || s.router == nil {
		return nil, ErrNotStarted
	}
	return s.router, nil
}

// Close stops every listener and session and closes the store.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *Server) closeLocked() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	s.stopsMu.Lock()
	for _, stop := range s.stops {
		stop()
	}
	s.stopsMu.Unlock()
	if s.ctl != nil {
		s.ctl.Close()
	}
	if s.httpSrv != nil {
		s.httpSrv.Close()
	}
	for _, c := range s.comps {
		c.Close()
	}
	for _, ln := range s.lns {
		ln.Close()
	}
	if s.c2s != nil {
		s.c2s.Close()
	}
	if s.compactor != nil {
		s.compactor.stop()
	}
	var err error
	if s.store != nil {
		err = s.store.Close()
	}
	return err
}

// control answers the admin control socket.
func (s *Server) control(ctx context.Context, req control.Request) control.Response {
	fail := func(err error) control.Response { return control.Response{Error: err.Error()} }
	switch req.Op {
	case control.OpUserAdd:
		if err := s.CreateUser(ctx, req.User, req.Password); err != nil {
			return fail(err)
		}
	case control.OpUserDelete:
		if err := s.DeleteUser(ctx, req.User); err != nil {
			return fail(err)
		}
	case control.OpUserPassword:
		if err := s.SetPassword(ctx, req.User, req.Password); err != nil {
			return fail(err)
		}
	case control.OpUserList:
		users, err := s.Users(ctx)
		if err != nil {
			return fail(err)
		}
		return control.Response{OK: true, Users: users}
	case control.OpClockNow, control.OpClockAdvance:
		tc := s.TestClock()
		if tc == nil {
			return fail(errors.New("the server does not run on the test clock (start it with --test-clock)"))
		}
		now := tc.Now()
		if req.Op == control.OpClockAdvance {
			d, err := spec.ParseDuration(req.Duration)
			if err != nil || d < 0 {
				return fail(fmt.Errorf("bad duration %q: want e.g. 7d, 36h, 90m or 30s", req.Duration))
			}
			now = tc.Advance(d)
		}
		return control.Response{OK: true, Now: now.UTC().Format(time.RFC3339)}
	case control.OpDump, control.OpDumpSCRAM:
		var b bytes.Buffer
		dump := s.Dump
		if req.Op == control.OpDumpSCRAM {
			dump = s.DumpCredentials
		}
		if err := dump(&b); err != nil {
			return fail(err)
		}
		return control.Response{OK: true, Dump: b.String()}
	default:
		return fail(fmt.Errorf("unknown operation %q", req.Op))
	}
	return control.Response{OK: true}
}

// Control carries out an admin request as the control socket would (for
// `xmppcheck admin` when it opened the store itself).
func (s *Server) Control(ctx context.Context, req control.Request) (control.Response, error) {
	resp := s.control(ctx, req)
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// DumpCredentials writes every account's SCRAM records, one line per hash:
// "scram USER@DOMAIN HASH ITERATIONS SALT STOREDKEY SERVERKEY" (base64), the
// reference export format of the conformance suite's evidence package.
func (s *Server) DumpCredentials(w io.Writer) error {
	if _, err := s.running(); err != nil {
		return err
	}
	return s.store.ForEachUser(func(u store.User) error {
		hashes := make([]string, 0, len(u.SCRAM))
		for h := range u.SCRAM {
			hashes = append(hashes, h)
		}
		slices.Sort(hashes)
		for _, h := range hashes {
			c := u.SCRAM[h]
			b := base64.StdEncoding.EncodeToString
			if _, err := fmt.Fprintf(w, "scram %s@%s %s %d %s %s %s\n", u.Name, s.cfg.domain, h, c.Iterations, b(c.Salt), b(c.StoredKey), b(c.ServerKey)); err != nil {
				return err
			}
		}
		return nil
	})
}

func portOf(addr string) string {
	if addr == "" {
		return ""
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}
