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
	"net"
	"os"
	"sync"
	"time"
)

// SocketName is the control socket's file name inside the data directory.
const SocketName = "admin.sock"

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
	key  []byte
	h    Handler
	ln   net.Listener
	path string
	wg   sync.WaitGroup
}

// Listen creates the socket at path (replacing a stale one) and serves it.
func Listen(ctx context.Context, path string, key []byte, h Handler) (*Server, error) {
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
	s := &Server{key: key, h: h, ln: ln, path: path}
	s.wg.Add(1)
	go s.serve(ctx)
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops serving and removes the socket.
func (s *Server) Close() error {
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
	c.SetDeadline(time.Now().Add(5 * time.Minute))
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
	enc.Encode(s.h(ctx, req))
}

// Sign returns HMAC-SHA-256(key, nonce).
func Sign(key, nonce []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(nonce)
	return m.Sum(nil)
}

// ErrNoServer is returned by Call when no server listens on the socket.
var ErrNoServer = errors.New("control: no server is running on this data directory")

// Call sends one request to the server at path.
func Call(ctx context.Context, path string, key []byte, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, fmt.Errorf("%w (%v)", ErrNoServer, err)
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Minute)
	}
	c.SetDeadline(deadline)
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 1<<30)
	if !sc.Scan() {
		return Response{}, fmt.Errorf("control: no greeting: %v", sc.Err())
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
		return Response{}, fmt.Errorf("control: no answer: %v", sc.Err())
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
