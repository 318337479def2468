package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/spec"
)

// ErrEmbeddedUnavailable is kept for callers that handled the embedded
// target's absence; NewEmbedded no longer returns it.
var ErrEmbeddedUnavailable = errors.New("target: the embedded reference server is not available")

// Embedded is the reference server in-process on loopback: temporary data
// and key directories (the key outside the data directory), its log
// written to a temporary file (evidence), the test clock, and every
// listener on a port the kernel picks. Each spec gets a fresh server
// (Reset), so claims cannot disturb one another.
type Embedded struct {
	pol *spec.Policy

	mu   sync.Mutex
	srv  *reference.Server
	dir  string // temporary directory of the current server
	log  *os.File
	opts []reference.Option
}

// EmbeddedOption configures the embedded target.
type EmbeddedOption func(*Embedded)

// WithReferenceOptions passes further options to reference.New (tests use
// it to start deliberately misconfigured servers).
func WithReferenceOptions(opts ...reference.Option) EmbeddedOption {
	return func(e *Embedded) { e.opts = append(e.opts, opts...) }
}

// NewEmbedded returns the embedded target for the policy; Start starts it.
func NewEmbedded(pol *spec.Policy, opts ...EmbeddedOption) (*Embedded, error) {
	if pol == nil {
		return nil, errors.New("target: embedded: no policy")
	}
	e := &Embedded{pol: pol}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Server returns the running reference server (nil before Start).
func (e *Embedded) Server() *reference.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv
}

func (e *Embedded) Info() report.Target {
	have, lacks := Capabilities(e)
	return report.Target{Name: "embedded", Kind: "embedded", Domain: "localhost",
		Description:  "the reference server (xmppcheck serve) in-process on loopback, with temporary data and key directories and a test clock",
		Capabilities: have, Lacks: lacks}
}

// Start starts a fresh server.
func (e *Embedded) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.startLocked(ctx)
}

func (e *Embedded) startLocked(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "xmppcheck-embedded-*")
	if err != nil {
		return fmt.Errorf("target: embedded: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("target: embedded: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("target: embedded: %w", err)
	}
	// Every listener on loopback; s2s dials only hosts it is told of, so
	// the embedded server never sends anything off this machine.
	opts := []reference.Option{
		reference.WithDataDir(data), reference.WithKeyFile(filepath.Join(dir, "at-rest.key")),
		reference.WithDomain("localhost"), reference.WithLogWriter(logf), reference.WithTestClock(),
		reference.WithC2SAddr("127.0.0.1:0"), reference.WithC2STLSAddr("127.0.0.1:0"),
		reference.WithS2SAddr("127.0.0.1:0"), reference.WithS2SStaticHostsOnly(),
		reference.WithHTTPAddr("127.0.0.1:0"), reference.WithControlSocket(""),
	}
	srv, err := reference.New(e.pol, append(opts, e.opts...)...)
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return fmt.Errorf("target: embedded: %w", err)
	}
	e.srv, e.dir, e.log = srv, dir, logf
	return nil
}

func (e *Embedded) closeLocked() error {
	if e.srv == nil {
		return nil
	}
	err := e.srv.Close()
	e.log.Close()
	os.RemoveAll(e.dir)
	e.srv, e.dir, e.log = nil, "", nil
	return err
}

// Reset replaces the server with a fresh one (empty store, new key, new
// log, clock at the real time): each spec's own environment.
func (e *Embedded) Reset(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.closeLocked(); err != nil {
		return fmt.Errorf("target: embedded: close: %w", err)
	}
	return e.startLocked(ctx)
}

// Close stops the server and removes its temporary files.
func (e *Embedded) Close(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closeLocked()
}

func (e *Embedded) server() (*reference.Server, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return nil, errors.New("target: embedded: not started")
	}
	return e.srv, nil
}

func (e *Embedded) Domain() string { return "localhost" }

func (e *Embedded) Addrs() Addrs {
	srv, err := e.server()
	if err != nil {
		return Addrs{}
	}
	a := srv.Addrs()
	return Addrs{C2S: a.C2S, C2STLS: a.C2STLS, S2S: a.S2S, HTTP: a.HTTP}
}

func (e *Embedded) Has(spec.Capability) (bool, string) { return true, "" }
func (e *Embedded) LocalAddrs() bool                   { return true }
func (e *Embedded) IBR() bool                          { return false }

// SeenAddrs: in-process on loopback the server sees the client's own
// address.
func (e *Embedded) SeenAddrs(_ context.Context, local netip.Addr) []netip.Addr {
	if !local.IsValid() {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	return []netip.Addr{local}
}

func (e *Embedded) NewAccount(ctx context.Context, hint string) (Account, error) {
	a := Account{User: hint + "-" + randomHex(5), Password: "pw-" + randomHex(12), Created: true}
	return a, e.CreateAccount(ctx, a)
}

func (e *Embedded) CreateAccount(ctx context.Context, a Account) error {
	srv, err := e.server()
	if err != nil {
		return err
	}
	return srv.CreateUser(ctx, a.User, a.Password)
}

func (e *Embedded) DeleteAccount(ctx context.Context, a Account) error {
	srv, err := e.server()
	if err != nil {
		return err
	}
	if err := srv.DeleteUser(ctx, a.User); err != nil && !errors.Is(err, reference.ErrNoSuchUser) {
		return err
	}
	return nil
}

// Logs returns the server's log file.
func (e *Embedded) Logs(context.Context) (*evidence.Corpus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return nil, errors.New("target: embedded: not started")
	}
	b, err := os.ReadFile(e.log.Name())
	if err != nil {
		return nil, fmt.Errorf("target: embedded: log: %w", err)
	}
	c := evidence.NewCorpus(0)
	return c, c.Add("log:server.log", b)
}

// Data returns the raw data directory (sealed store: no plaintext).
func (e *Embedded) Data(context.Context) (*evidence.Corpus, error) {
	srv, err := e.server()
	if err != nil {
		return nil, err
	}
	c := evidence.NewCorpus(0)
	return c, c.AddDir(srv.DataDir(), "data:")
}

// PlainData returns the store opened with the key: every record as JSON
// lines and the SCRAM records in the reference export format.
func (e *Embedded) PlainData(context.Context) (*evidence.Corpus, error) {
	srv, err := e.server()
	if err != nil {
		return nil, err
	}
	var dump, creds bytes.Buffer
	if err := srv.Dump(&dump); err != nil {
		return nil, fmt.Errorf("target: embedded: dump: %w", err)
	}
	if err := srv.DumpCredentials(&creds); err != nil {
		return nil, fmt.Errorf("target: embedded: dump credentials: %w", err)
	}
	c := evidence.NewCorpus(0)
	if err := c.Add("store:records.jsonl", dump.Bytes()); err != nil {
		return nil, err
	}
	return c, c.Add("store:credentials", creds.Bytes())
}

func (e *Embedded) StoreFormat() evidence.StoreFormat { return evidence.FormatReference }

// Advance moves the test clock; due purges run before it returns.
func (e *Embedded) Advance(_ context.Context, d time.Duration) error {
	srv, err := e.server()
	if err != nil {
		return err
	}
	tc := srv.TestClock()
	if tc == nil {
		return fmt.Errorf("%w: the embedded server has no test clock", ErrUnsupported)
	}
	tc.Advance(d)
	return nil
}

func (e *Embedded) Now() time.Time {
	srv, err := e.server()
	if err != nil || srv.TestClock() == nil {
		return time.Now()
	}
	return srv.TestClock().Now()
}
