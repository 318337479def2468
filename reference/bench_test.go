package reference

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdg-go/scram"
	"mellium.im/xmlstream"

	"github.com/xmppcheck/xmppcheck/reference/scramauth"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"github.com/xmppcheck/xmppcheck/spec"
)

// counter counts complete <message elements in a byte stream without
// parsing: the cheapest possible receiving client, so that benchmarks
// measure the server.
type counter struct {
	mu   sync.Mutex
	n    int
	tail []byte
	cond *sync.Cond
}

var endTag = []byte("</message>")

func (c *counter) consume(conn net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		n, err := conn.Read(buf)
		if n > 0 {
			data := append(c.tail, buf[:n]...)
			k := bytes.Count(data, endTag)
			if i := bytes.LastIndex(data, endTag); i >= 0 {
				data = data[i+len(endTag):]
			}
			if len(data) > len(endTag) {
				data = data[len(data)-len(endTag):]
			}
			c.tail = append(c.tail[:0], data...)
			c.mu.Lock()
			c.n += k
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (c *counter) wait(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n < n {
		if time.Now().After(deadline) {
			return false
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
	}
	return true
}

// BenchmarkRouteMessages measures the server's cost of routing one chat
// message between two online users over TLS (client and server in one
// process; clients do no XML work). ns/op is wall time per message with
// 2 senders pipelining.
func BenchmarkRouteMessages(b *testing.B) {
	srv := startServer(b)
	const pairs = 2
	var senders []net.Conn
	var cnt []*counter
	for i := 0; i < pairs; i++ {
		from, to := fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i)
		srv.user(b, from, "pw")
		srv.user(b, to, "pw")
		s := login(b, srv.Server, from, "pw", "x")
		r := login(b, srv.Server, to, "pw", "x")
		r.send("<presence/>")
		r.sync()
		c := &counter{}
		c.cond = sync.NewCond(&c.mu)
		if r.r.Buffered() != 0 {
			b.Fatal("receiver has unread data")
		}
		go c.consume(r.conn)
		senders = append(senders, s.conn)
		cnt = append(cnt, c)
	}
	msg := func(i int) []byte {
		return fmt.Appendf(nil, "<message to='r%d@localhost' type='chat' id='m'><body>%s</body></message>", i, strings.Repeat("x", 64))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / pairs
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := msg(i)
			for k := 0; k < per; k++ {
				senders[i].Write(m)
			}
		}()
	}
	wg.Wait()
	for i := range cnt {
		if !cnt[i].wait(per, time.Minute) {
			b.Fatalf("pair %d: %d of %d delivered", i, cnt[i].n, per)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(per*pairs)/b.Elapsed().Seconds(), "msgs/s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRouteCPU measures process CPU time per routed message (server
// plus deliberately cheap clients in one process) at a steady 10,000
// messages/s spread over 100 pairs, so that queues stay shallow as with
// real users; cpu-µs/msg is the figure to compare between server versions.
func BenchmarkRouteCPU(b *testing.B) {
	srv := startServer(b, WithLimits(Limits{MaxConnsPerAddr: -1}))
	const pairs = 100
	const rate = 10000.0
	var senders []net.Conn
	var cnt []*counter
	for i := 0; i < pairs; i++ {
		from, to := fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i)
		srv.user(b, from, "pw")
		srv.user(b, to, "pw")
		s := login(b, srv.Server, from, "pw", "x")
		r := login(b, srv.Server, to, "pw", "x")
		r.send("<presence/>")
		r.sync()
		c := &counter{}
		c.cond = sync.NewCond(&c.mu)
		go c.consume(r.conn)
		senders = append(senders, s.conn)
		cnt = append(cnt, c)
	}
	per := max(b.N/pairs, 1)
	interval := time.Duration(float64(time.Second) * pairs / rate)
	b.ResetTimer()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := fmt.Appendf(nil, "<message to='r%d@localhost' type='chat'><body>%s</body></message>", i, strings.Repeat("x", 64))
			next := time.Now().Add(time.Duration(i) * interval / pairs)
			for k := 0; k < per; k++ {
				time.Sleep(time.Until(next))
				next = next.Add(interval)
				senders[i].Write(m)
			}
		}()
	}
	wg.Wait()
	for i := range cnt {
		if !cnt[i].wait(per, time.Minute) {
			b.Fatalf("pair %d: %d of %d delivered", i, cnt[i].n, per)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(per*pairs), "cpu-µs/msg")
}

var sampleStanzas = func() []byte {
	var s []byte
	for i := 0; i < 100; i++ {
		s = fmt.Appendf(s, "<message to='user%d@localhost' type='chat' id='id%d' xml:lang='en'><body>%s</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>", i, i, strings.Repeat("hello ", 12))
	}
	return s
}()

// BenchmarkDecodeWire reads 100 typical chat messages with this package's
// reader (the c2s hot path).
func BenchmarkDecodeWire(b *testing.B) {
	in := append([]byte(hdr0), sampleStanzas...)
	b.SetBytes(int64(len(sampleStanzas)))
	b.ReportAllocs()
	for b.Loop() {
		r := wire.NewReader(bytes.NewReader(in))
		r.ReadHeader()
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

// BenchmarkDecodeEncodingXML reads the same messages the way a
// mellium.im/xmpp session does: encoding/xml tokens, each stanza collected
// into a token slice (xmlstream.Inner), for comparison with the wire reader.
func BenchmarkDecodeEncodingXML(b *testing.B) {
	in := append([]byte(hdr0), sampleStanzas...)
	b.SetBytes(int64(len(sampleStanzas)))
	b.ReportAllocs()
	for b.Loop() {
		d := xml.NewDecoder(bytes.NewReader(in))
		d.Token() // <?xml?>
		d.Token() // <stream:stream>
		for {
			tok, err := d.Token()
			if err != nil {
				break
			}
			start, ok := tok.(xml.StartElement)
			if !ok {
				continue
			}
			if _, err := xmlstream.Copy(discardTokens{}, xmlstream.Inner(d)); err != nil && err != io.EOF {
				b.Fatal(err)
			}
			_ = start
		}
	}
}

type discardTokens struct{}

func (discardTokens) EncodeToken(xml.Token) error { return nil }
func (discardTokens) Flush() error                { return nil }

const hdr0 = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

var _ = tls.VersionTLS12
var _ = context.Background

// parallel runs n operations with 8 concurrent workers and returns the
// elapsed time.
func parallel(n int, op func(i int) error) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	var first error
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

// BenchmarkLoginVsBound compares complete c2s logins (TCP, stream headers,
// STARTTLS, TLS 1.3 handshake, SCRAM-SHA-1, resource binding; clients'
// salted passwords cached, as clients do) with their bound: the same TLS
// handshake over loopback TCP plus the same SCRAM computations (client and
// server, in memory) and nothing else. Both run in this process, in
// alternating rounds of b.N/10 operations, 8 at a time; the reported
// ratio is the median of the rounds' full/bound rates.
func BenchmarkLoginVsBound(b *testing.B) {
	srv := startServer(b, WithLimits(Limits{MaxConnsPerAddr: -1}))
	const users = 50
	keys := make([]*scram.Client, users)
	creds := make([]store.Credentials, users)
	for u := range keys {
		srv.user(b, fmt.Sprintf("u%d", u), "pw")
		keys[u], _ = scram.SHA1.NewClient(fmt.Sprintf("u%d", u), "pw", "")
		c, _ := scramauth.Derive("pw", 4096, spec.HashSHA1)
		creds[u] = c[spec.HashSHA1]
	}
	addr := srv.Addrs().C2S
	lo := netip.MustParseAddr("127.0.0.1")
	full := func(i int) error {
		c, err := benchLogin(addr, lo, keys[i%users], fmt.Sprintf("r%d", i))
		if err == nil {
			c.Close()
		}
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	scfg := srv.c2s.TLSConfig()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, scfg)
				tc.Handshake()
				tc.Close()
			}()
		}
	}()
	bound := func(i int) error {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err != nil {
			return err
		}
		c.Close()
		u := i % users
		conv, err := scramauth.Start("SCRAM-SHA-1", func(string, string) (store.Credentials, bool) { return creds[u], true }, scram.ChannelBinding{}, []byte("k"), 4096)
		if err != nil {
			return err
		}
		cc := keys[u].NewConversation()
		msg, _ := cc.Step("")
		for {
			out, done, err := conv.Step([]byte(msg))
			if err != nil {
				return err
			}
			next, err := cc.Step(string(out))
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			msg = next
		}
	}
	// Warm up both paths (accounts' credentials, TLS session state).
	parallel(50, full)
	parallel(50, bound)
	rounds := 10
	per := max(b.N/rounds, 20)
	var fullT, boundT time.Duration
	var ratios []float64
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		tf, err := parallel(per, full)
		if err != nil {
			b.Fatal(err)
		}
		tb, err := parallel(per, bound)
		if err != nil {
			b.Fatal(err)
		}
		fullT += tf
		boundT += tb
		ratios = append(ratios, tb.Seconds()/tf.Seconds())
	}
	b.StopTimer()
	slices.Sort(ratios)
	n := float64(per * rounds)
	b.ReportMetric(n/fullT.Seconds(), "logins/s")
	b.ReportMetric(n/boundT.Seconds(), "bound/s")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}
