package control

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/accept"
)

// SocketName is the control socket's file name inside the data directory.
const SocketName = "admin.sock"

// KeyLabel is the purpose under which the server and its clients derive
// the control socket's key from the at-rest key (store.DeriveKey): both
// ends must use this one value.
const KeyLabel = "admin control v1"

// Ops.
const (
	OpUserAdd      = "user.add"
	OpUserDelete   = "user.delete"
	OpUserList     = "user.list"
	OpUserPassword = "user.password"
	OpClockAdvance = "clock.advance"
	OpClockNow     = "clock.now"
	OpDump         = "dump"
	OpDumpSCRAM    = "dump.scram"
)

// Request is a client's request.
type Request struct {
	MAC      string `json:"mac"`
	Op       string `json:"op"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Duration string `json:"duration,omitempty"`
}

// Response is the server's answer.
type Response struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error,omitempty"`
	Users []string `json:"users,omitempty"`
	// Now is the server clock's time after a clock op (RFC 3339).
	Now string `json:"now,omitempty"`
	// Dump is the store dump (JSON lines) for OpDump.
	Dump string `json:"dump,omitempty"`
}

// Handler executes authenticated requests.
type Handler func(ctx context.Context, req Request) Response

// Server serves the control socket.
type Server struct {
	key    []byte
	h      Handler
	ln     net.Listener
	path   string
	wg     sync.WaitGroup
	log    *slog.Logger
	onDead func(error)
	closed atomic.Bool
}

// Option configures Listen.
type Option func(*Server)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithOnDeath is called when the socket stops accepting for good (an
// accept error that is not temporary): the server should stop loudly.
func WithOnDeath(f func(error)) Option { return func(s *Server) { s.onDead = f } }

// RequestTimeout bounds the time a client has to send its request once
// connected.
const RequestTimeout = 10 * time.Second

// CallTimeout is how long Call waits for an answer when its context has
// no deadline.
const CallTimeout = 30 * time.Second

// Listen creates the socket at path (replacing a stale one) and serves it.
// Temporary accept errors (EMFILE, …) are retried with backoff (package
// accept); only a socket that really died ends serving.
func Listen(ctx context.Context, path string, key []byte, h Handler, opts ...Option) (*Server, error) {
	if len(path) > 100 {
		return nil, fmt.Errorf("control: socket path %q is too long for a Unix socket", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		// A socket nobody answers on is left over from a crash.
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s is in use: another server runs on this data directory", path)
		}
		os.Remove(path)
	}
	// Connecting needs write permission on the socket: with the usual umask
	// only the owner has it, and the chmod below makes sure.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: listen: %w", err)
	}
	os.Chmod(path, 0o600)
	s := &Server{key: key, h: h, path: path, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	s.ln = accept.Guard(ln, accept.WithName("admin"), accept.WithLogger(s.log))
	s.wg.Add(1)
	go s.serve(ctx)
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	s.closed.Store(true)
	err := s.ln.Close()
	s.wg.Wait()
	os.Remove(s.path)
	return err
}

func (s *Server) serve(ctx context.Context) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !s.closed.Load() && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil && s.onDead != nil {
				s.onDead(fmt.Errorf("control: accept: %w", err))
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, c)
		}()
	}
}

func (s *Server) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	// The request must come at once; the answer may take longer (a dump
	// of a large store).
	c.SetDeadline(time.Now().Add(RequestTimeout))
	nonce := make([]byte, 32)
	rand.Read(nonce)
	enc := json.NewEncoder(c)
	if err := enc.Encode(map[string]string{"nonce": hex.EncodeToString(nonce)}); err != nil {
		return
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 1<<20)
	if !sc.Scan() {
		return
	}
	var req Request
	if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
		enc.Encode(Response{Error: "malformed request"})
		return
	}
	mac, err := hex.DecodeString(req.MAC)
	if err != nil || !hmac.Equal(mac, Sign(s.key, nonce)) {
		enc.Encode(Response{Error: "not authorised: the key file does not match this server's"})
		return
	}
	resp := s.h(ctx, req)
	c.SetDeadline(time.Now().Add(RequestTimeout))
	enc.Encode(resp)
}

// Sign returns HMAC-SHA-256(key, nonce).
func Sign(key, nonce []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(nonce)
	return m.Sum(nil)
}

// ErrNoServer is returned by Call when no server listens on the socket.
var ErrNoServer = errors.New("control: no server is running on this data directory")

// ErrTimeout is returned by Call when the server accepted the connection
// but did not answer in time.
var ErrTimeout = errors.New("control: the server did not answer in time")

// Call sends one request to the server at path.
func Call(ctx context.Context, path string, key []byte, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, fmt.Errorf("%w (%v)", ErrNoServer, err)
	}
	defer c.Close()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CallTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	wait := time.Until(deadline).Round(time.Second)
	timedOut := func(what string, err error) error {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w: no %s within %s (the server is overloaded or stuck; see its log)", ErrTimeout, what, wait)
		}
		return fmt.Errorf("control: no %s: %v", what, err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 1<<30)
	if !sc.Scan() {
		return Response{}, timedOut("greeting", sc.Err())
	}
	var hello struct{ Nonce string }
	if err := json.Unmarshal(sc.Bytes(), &hello); err != nil {
		return Response{}, fmt.Errorf("control: bad greeting: %w", err)
	}
	nonce, err := hex.DecodeString(hello.Nonce)
	if err != nil || len(nonce) < 16 {
		return Response{}, errors.New("control: bad greeting")
	}
	req.MAC = hex.EncodeToString(Sign(key, nonce))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, fmt.Errorf("control: send: %w", err)
	}
	if !sc.Scan() {
		return Response{}, timedOut("answer", sc.Err())
	}
	var resp Response
	if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
		return Response{}, fmt.Errorf("control: bad answer: %w", err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
