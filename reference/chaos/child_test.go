package chaos

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/reference/control"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// childConfig is what the parent tells the server process.
type childConfig struct {
	Data, Key, Log string
	// NoFile is the soft open-file limit the child sets before it starts
	// (0: unchanged).
	NoFile uint64
	Limits reference.Limits
	// CompactLoop makes the child compact its store without pause (kill -9
	// during compaction).
	CompactLoop bool
}

func TestMain(m *testing.M) {
	if c := os.Getenv("XMPPCHECK_CHAOS_CHILD"); c != "" {
		os.Exit(childMain(c))
	}
	os.Exit(m.Run())
}

// childMain runs the server: the bound addresses as one JSON line on
// stdout, then serving until stdin closes or SIGKILL.
func childMain(raw string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Println("START-ERROR", err)
		return 2
	}
	if cfg.NoFile > 0 {
		var l syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
		l.Cur = cfg.NoFile
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			fmt.Println("START-ERROR setrlimit:", err)
			return 2
		}
	}
	pol, err := policies.LoadDefault()
	if err != nil {
		fmt.Println("START-ERROR", err)
		return 2
	}
	lf, err := os.OpenFile(cfg.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Println("START-ERROR", err)
		return 2
	}
	srv, err := reference.New(pol, reference.WithDataDir(cfg.Data), reference.WithKeyFile(cfg.Key),
		reference.WithC2SAddr("127.0.0.1:0"), reference.WithC2STLSAddr("127.0.0.1:0"), reference.WithS2SAddr("127.0.0.1:0"),
		reference.WithHTTPAddr("127.0.0.1:0"), reference.WithMetricsAddr("127.0.0.1:0"), reference.WithS2SStaticHostsOnly(),
		reference.WithLimits(cfg.Limits), reference.WithLogWriter(lf))
	if err == nil {
		err = srv.Start(context.Background())
	}
	if err != nil {
		fmt.Println("START-ERROR", strings.ReplaceAll(err.Error(), "\n", " "))
		return 2
	}
	b, _ := json.Marshal(srv.Addrs())
	fmt.Println(string(b))
	if cfg.CompactLoop {
		go func() {
			for srv.Compact() == nil {
			}
		}()
	}
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-eof:
		srv.Close()
		return 0
	case <-srv.Done():
		fmt.Fprintln(os.Stderr, srv.Err())
		return 3
	}
}

// child is a running server process.
type child struct {
	t     *testing.T
	cfg   childConfig
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs reference.Addrs
	key   []byte
}

// newConfig makes a data directory and key file path under t's temporary
// directory.
func newConfig(t *testing.T) childConfig {
	root := t.TempDir()
	return childConfig{Data: filepath.Join(root, "data"), Key: filepath.Join(root, "at-rest.key"), Log: filepath.Join(root, "server.log")}
}

// start runs a server process; a start refused by the server is returned
// as an error with its message.
func start(t *testing.T, cfg childConfig) (*child, error) {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XMPPCHECK_CHAOS_CHILD="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cfg: cfg, cmd: cmd, stdin: stdin}
	t.Cleanup(func() { c.kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("server process: no start line: %v", err)
	}
	if msg, ok := strings.CutPrefix(line, "START-ERROR "); ok {
		cmd.Wait()
		return nil, errors.New(strings.TrimSpace(msg))
	}
	if err := json.Unmarshal([]byte(line), &c.addrs); err != nil {
		t.Fatalf("start line %q: %v", line, err)
	}
	if c.key, err = store.ReadKey(cfg.Key); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

func mustStart(t *testing.T, cfg childConfig) *child {
	t.Helper()
	c, err := start(t, cfg)
	if err != nil {
		t.Fatalf("server start: %v", err)
	}
	return c
}

// kill ends the process with SIGKILL (safe twice).
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// log returns what the server logged so far.
func (c *child) log() string {
	b, _ := os.ReadFile(c.cfg.Log)
	return string(b)
}

// waitLog waits (bounded) for substr in the log.
func (c *child) waitLog(substr string) {
	c.t.Helper()
	for end := time.Now().Add(20 * time.Second); !strings.Contains(c.log(), substr); {
		if time.Now().After(end) {
			c.t.Fatalf("the server never logged %q:\n%s", substr, c.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// admin sends one admin request over the control socket.
func (c *child) admin(req control.Request) (control.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return control.Call(ctx, c.addrs.Control, store.DeriveKey(c.key, "admin control v1"), req)
}

func (c *child) addUser(name string) {
	c.t.Helper()
	if _, err := c.admin(control.Request{Op: control.OpUserAdd, User: name, Password: "pw-" + name}); err != nil {
		c.t.Fatal(err)
	}
}

// login connects a legitimate client from local (the zero address: the
// default).
func (c *child) login(ctx context.Context, user string, local netip.Addr) (*xmppclient.Client, error) {
	opts := []xmppclient.Option{xmppclient.WithInsecureSkipVerify(), xmppclient.WithDomain("localhost"), xmppclient.WithTimeout(5 * time.Second)}
	if local.IsValid() {
		opts = append(opts, xmppclient.WithLocalAddr(local))
	}
	return xmppclient.Connect(ctx, c.addrs.C2S, user, "pw-"+user, opts...)
}

// checks are what a legitimate client does on each listener.
func (c *child) checks() map[string]func() error {
	ctx := context.Background()
	return map[string]func() error{
		"c2s": func() error {
			cl, err := c.login(ctx, "alice", netip.Addr{})
			if err == nil {
				cl.Close(ctx)
			}
			return err
		},
		"c2s_tls": func() error {
			cl, err := xmppclient.Dial(ctx, c.addrs.C2STLS, xmppclient.WithInsecureSkipVerify(), xmppclient.WithDomain("localhost"),
				xmppclient.WithTLSMode(xmppclient.DirectTLS), xmppclient.WithTimeout(5*time.Second))
			if err == nil {
				cl.Abort()
			}
			return err
		},
		"s2s": func() error {
			conn, err := net.DialTimeout("tcp", c.addrs.S2S, 5*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
			b := make([]byte, 4096)
			var got strings.Builder
			for !strings.Contains(got.String(), "starttls") {
				n, err := conn.Read(b)
				if err != nil {
					return fmt.Errorf("s2s: %w (got %q)", err, got.String())
				}
				got.Write(b[:n])
			}
			return nil
		},
		"http": func() error {
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
			resp, err := cl.Get("https://" + c.addrs.HTTP + "/upload/x/y")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				return fmt.Errorf("http: status %d", resp.StatusCode)
			}
			return nil
		},
		"metrics": func() error {
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := cl.Get("http://" + c.addrs.Metrics + "/metrics")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("metrics: status %d", resp.StatusCode)
			}
			return nil
		},
		"admin": func() error {
			resp, err := c.admin(control.Request{Op: control.OpUserList})
			if err == nil && len(resp.Users) == 0 {
				err = errors.New("admin: no users listed")
			}
			return err
		},
	}
}

// eventually retries f (bounded) until it succeeds and returns how long
// that took: a figure for BENCHMARKS.md, never asserted.
func eventually(t *testing.T, what string, f func() error) time.Duration {
	t.Helper()
	t0 := time.Now()
	var err error
	for end := t0.Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err = f(); err == nil {
			return time.Since(t0)
		}
	}
	t.Fatalf("%s never recovered: %v", what, err)
	return 0
}

// flood opens n TCP connections to addr from local and keeps them open
// (sending nothing) until the returned function is called. Connections
// the server refuses are counted.
func flood(t *testing.T, addr string, local netip.Addr, n int) (held []net.Conn, release func()) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	return held, func() {
		for _, c := range held {
			c.Close()
		}
	}
}

// closedByServer counts the connections the server has closed: a read
// returns at once with EOF or a reset.
func closedByServer(conns []net.Conn) int {
	n := 0
	b := make([]byte, 4096)
	for _, c := range conns {
		for {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(b); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					n++
				}
				break
			}
		}
	}
	return n
}
