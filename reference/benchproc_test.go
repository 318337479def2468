package reference

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// memLine reports the server process's memory after a collection:
// "MEM sessions=N heap=B stack=B goroutines=N rss=B".
func memLine(srv *Server) string {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("MEM sessions=%d heap=%d stack=%d goroutines=%d rss=%d",
		srv.router.Sessions(), ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine(), rssBytes())
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// benchServer is the server in a subprocess of the test binary.
type benchServer struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
}

func startBenchServer(b *testing.B, users int, env ...string) *benchServer {
	b.Helper()
	root := b.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XMPPREF_SERVE_DATA="+filepath.Join(root, "data"), "XMPPREF_SERVE_KEY="+filepath.Join(root, "key"),
		"XMPPREF_SERVE_USERS="+strconv.Itoa(users), "XMPPREF_SERVE_PREFIX=u")
	cmd.Env = append(cmd.Env, env...)
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &benchServer{cmd: cmd, in: in, out: bufio.NewScanner(outp)}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for s.out.Scan() {
		if a, ok := strings.CutPrefix(s.out.Text(), "LISTENING "); ok {
			s.addr = a
			return s
		}
	}
	b.Fatal("bench server did not start")
	return nil
}

type memStats struct{ sessions, heap, stack, goroutines, rss int64 }

func (s *benchServer) mem(b *testing.B) memStats {
	fmt.Fprintln(s.in, "mem")
	for s.out.Scan() {
		l, ok := strings.CutPrefix(s.out.Text(), "MEM ")
		if !ok {
			continue
		}
		var m memStats
		for _, f := range strings.Fields(l) {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "sessions":
				m.sessions = n
			case "heap":
				m.heap = n
			case "stack":
				m.stack = n
			case "goroutines":
				m.goroutines = n
			case "rss":
				m.rss = n
			}
		}
		return m
	}
	b.Fatal("no MEM line")
	return memStats{}
}

// benchClient is a process of the test binary holding sessions.
type benchClient struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startBenchClients starts procs client processes that together open n
// authenticated, bound, idle sessions as u0 … u(users-1), spread over the
// source addresses 127.0.x.y (x from 1), at most perAddr per address.
func startBenchClients(b *testing.B, addr string, n, users, procs, perAddr int) []*benchClient {
	var cs []*benchClient
	per := (n + procs - 1) / procs
	for p := 0; p < procs; p++ {
		from, to := p*per, min((p+1)*per, n)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "XMPPREF_BENCH_CLIENT=1",
			fmt.Sprintf("XMPPREF_BENCH_ARGS=%s %d %d %d %d", addr, from, to, users, perAddr))
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
		cs = append(cs, &benchClient{cmd: cmd, in: in, out: bufio.NewScanner(out)})
	}
	return cs
}

// ready waits for the client's "READY ok failed seconds" line.
func (c *benchClient) ready(b *testing.B) (ok, failed int, secs float64) {
	for c.out.Scan() {
		if l, found := strings.CutPrefix(c.out.Text(), "READY "); found {
			fmt.Sscanf(l, "%d %d %f", &ok, &failed, &secs)
			return
		}
	}
	b.Fatal("client process ended without READY")
	return
}

// sourceAddr returns the i-th session's source address: 127.0.x.y with
// perAddr sessions per address, x ≥ 1 (127.0.0.1 stays for other tests).
func sourceAddr(i, perAddr int) netip.Addr {
	k := i/perAddr + 256 // skip 127.0.0.*
	return netip.AddrFrom4([4]byte{127, byte(k >> 16), byte(k >> 8), byte(k)})
}

// benchClientMain opens the sessions named by XMPPREF_BENCH_ARGS, prints
// READY and holds them until standard input closes.
func benchClientMain() {
	var addr string
	var from, to, users, perAddr int
	fmt.Sscanf(os.Getenv("XMPPREF_BENCH_ARGS"), "%s %d %d %d %d", &addr, &from, &to, &users, &perAddr)
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	keys := make([]*scram.Client, users)
	for u := range keys {
		keys[u], _ = scram.SHA1.NewClient(fmt.Sprintf("u%d", u), "pw", "")
	}
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := benchLogin(addr, sourceAddr(i, perAddr), keys[i%users], fmt.Sprintf("r%d", i))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	for i := from; i < to; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "bench client: first error:", e)
	}
	fmt.Printf("READY %d %d %.3f\n", ok.Load(), failed.Load(), time.Since(start).Seconds())
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// benchLogin connects from laddr, negotiates STARTTLS, SCRAM-SHA-1 (the
// client's salted password cached by cl) and binds resource.
func benchLogin(addr string, laddr netip.Addr, cl *scram.Client, resource string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: laddr.AsSlice()}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Now().Add(60 * time.Second))
	fail := func(err error) (net.Conn, error) { raw.Close(); return nil, err }
	hdr := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
	var conn net.Conn = raw
	r := wire.NewReader(conn)
	open := func() error {
		if _, err := io.WriteString(conn, hdr); err != nil {
			return err
		}
		if _, err := r.ReadHeader(); err != nil {
			return err
		}
		_, err := r.Next() // features
		return err
	}
	if err := open(); err != nil {
		return fail(err)
	}
	io.WriteString(conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if el, err := r.Next(); err != nil || el.Name.Local != "proceed" {
		return fail(fmt.Errorf("starttls: %v %v", el, err))
	}
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		return fail(err)
	}
	conn = tc
	r.Reset(conn)
	if err := open(); err != nil {
		return fail(err)
	}
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	fmt.Fprintf(conn, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>%s</auth>", base64.StdEncoding.EncodeToString([]byte(first)))
	for done := false; !done; {
		el, err := r.Next()
		if err != nil {
			return fail(err)
		}
		in, _ := base64.StdEncoding.DecodeString(el.Text())
		switch el.Name.Local {
		case "challenge":
			out, err := conv.Step(string(in))
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(conn, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", base64.StdEncoding.EncodeToString([]byte(out)))
		case "success":
			if _, err := conv.Step(string(in)); err != nil {
				return fail(err)
			}
			done = true
		default:
			return fail(fmt.Errorf("SASL: %s", el))
		}
	}
	r.Reset(conn)
	if err := open(); err != nil {
		return fail(err)
	}
	fmt.Fprintf(conn, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>", resource)
	if el, err := r.Next(); err != nil || el.Get("type") != "result" {
		return fail(fmt.Errorf("bind: %v %v", el, err))
	}
	raw.SetDeadline(time.Time{})
	return conn, nil
}

// benchSessions holds n idle authenticated TLS sessions (STARTTLS, SCRAM,
// bound) on a server subprocess and reports its memory per session: Go
// heap+stack after a collection, and resident set size.
func benchSessions(b *testing.B, n int) {
	if b.N > 1 {
		b.Skip("run with -benchtime 1x")
	}
	const users, procs, perAddr = 1000, 2, 100
	srv := startBenchServer(b, users)
	before := srv.mem(b)
	start := time.Now()
	clients := startBenchClients(b, srv.addr, n, users, procs, perAddr)
	var ok, failed int
	for _, c := range clients {
		o, f, _ := c.ready(b)
		ok, failed = ok+o, failed+f
	}
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second) // let the last sessions settle
	after := srv.mem(b)
	if failed > 0 || after.sessions != int64(n) {
		b.Fatalf("%d sessions bound on the server, %d logins ok, %d failed, want %d", after.sessions, ok, failed, n)
	}
	per := func(a, bb int64) float64 { return float64(a-bb) / float64(n) / 1024 }
	b.ReportMetric(float64(after.sessions), "sessions")
	b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "KiB-heap+stack/session")
	b.ReportMetric(per(after.rss, before.rss), "KiB-RSS/session")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/session")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "logins/s")
}

// BenchmarkIdleSessions5k: memory per idle authenticated TLS session.
func BenchmarkIdleSessions5k(b *testing.B) { benchSessions(b, 5000) }

// BenchmarkIdleSessions19950: sessions held at this machine's open-file
// limit (hard limit 20,000 per process; the server needs a few descriptors
// of its own).
func BenchmarkIdleSessions19950(b *testing.B) { benchSessions(b, 19950) }

var _ = errors.New
