package reference

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// routeRig is P sender/receiver pairs of raw TLS connections: to the
// reference server (logged in, bound, receivers available) or to a bare
// TLS relay that copies bytes from each sender to its receiver.
type routeRig struct {
	name    string
	srv     *testServer
	senders []net.Conn
	recv    []*stampReader
}

// stampReader reads a receiver's stream and records, for each message, the
// send time carried in its body ("<body>UNIXNANO …</body>").
type stampReader struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
	hist *hdrhistogram.Histogram
}

func newStampReader() *stampReader {
	s := &stampReader{hist: hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

var bodyTag = []byte("<body>")

func (s *stampReader) consume(conn net.Conn) {
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := br.ReadSlice('>')
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
		if !bytes.HasSuffix(line, bodyTag) {
			continue
		}
		stamp, err := br.ReadSlice(' ')
		if err != nil {
			return
		}
		ns, _ := strconv.ParseInt(string(stamp[:len(stamp)-1]), 10, 64)
		lat := time.Since(time.Unix(0, ns))
		s.mu.Lock()
		s.n++
		s.hist.RecordValue(max(lat.Microseconds(), 1))
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

func (s *stampReader) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *stampReader) waitFor(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for s.count() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Microsecond)
	}
	return true
}

func (s *stampReader) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n = 0
	s.hist.Reset()
}

const filler = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func stampedMessage(to string, at time.Time) []byte {
	return fmt.Appendf(nil, "<message to='%s' type='chat'><body>%d %s</body></message>", to, at.UnixNano(), filler)
}

// serverRig logs in P pairs on the in-process server.
func serverRig(b *testing.B, srv testServer, pairs int) *routeRig {
	rig := &routeRig{name: "route", srv: &srv}
	for i := 0; i < pairs; i++ {
		from, to := fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i)
		srv.user(b, from, "pw")
		srv.user(b, to, "pw")
		s := login(b, srv.Server, from, "pw", "x")
		r := login(b, srv.Server, to, "pw", "x")
		r.send("<presence/>")
		r.sync()
		sr := newStampReader()
		go sr.consume(r.conn)
		rig.senders = append(rig.senders, s.conn)
		rig.recv = append(rig.recv, sr)
	}
	return rig
}

// relayRig connects P pairs through a TLS relay: the bound of what any
// TLS-terminating server can do with the same clients on this machine.
func relayRig(b *testing.B, cfg *tls.Config, pairs int) *routeRig {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	waiting := map[string]net.Conn{}
	senders := map[string]*bufio.Reader{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				// First line: "PAIR name role".
				br := bufio.NewReader(tc)
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				f := strings.Fields(l)
				if len(f) != 3 {
					return
				}
				mu.Lock()
				other, ok := waiting[f[1]]
				if !ok {
					waiting[f[1]] = tc
					senders[f[1]+"/"+f[2]] = br
					mu.Unlock()
					return
				}
				sbr := senders[f[1]+"/send"]
				mu.Unlock()
				// The second to arrive copies sender → receiver.
				if f[2] == "send" {
					io.Copy(other, br)
				} else {
					io.Copy(tc, sbr)
				}
			}()
		}
	}()
	rig := &routeRig{name: "relay"}
	for i := 0; i < pairs; i++ {
		dial := func(role string) net.Conn {
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "PAIR p%d %s\n", i, role)
			return c
		}
		r := dial("recv")
		time.Sleep(time.Millisecond)
		s := dial("send")
		sr := newStampReader()
		go sr.consume(r)
		rig.senders = append(rig.senders, s)
		rig.recv = append(rig.recv, sr)
	}
	return rig
}

func (rig *routeRig) fail(b *testing.B, msg string) {
	if rig.srv != nil {
		var m strings.Builder
		for _, o := range []string{"delivered", "offline", "error", "dropped"} {
			fmt.Fprintf(&m, " %s=%v", o, testutil.ToFloat64(rig.srv.metrics.Stanzas.WithLabelValues("message", o)))
		}
		msg += "; server messages:" + m.String() + "; stream errors: " + fmt.Sprint(testutil.CollectAndCount(rig.srv.metrics.StreamErrors))
	}
	b.Fatalf("%s rig: %s", rig.name, msg)
}

// blast sends per messages from every sender, at most window in flight per
// pair, and returns the elapsed time until all are received.
func (rig *routeRig) blast(b *testing.B, per, window int) time.Duration {
	for _, r := range rig.recv {
		r.reset()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, s := range rig.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("r%d@localhost", i)
			deadline := time.Now().Add(5 * time.Minute)
			for k := 0; k < per; k++ {
				for k-rig.recv[i].count() >= window && time.Now().Before(deadline) {
					time.Sleep(50 * time.Microsecond)
				}
				s.Write(stampedMessage(to, time.Now()))
			}
		}()
	}
	wg.Wait()
	for i, r := range rig.recv {
		if !r.waitFor(per, time.Minute) {
			rig.fail(b, fmt.Sprintf("pair %d: %d of %d received", i, r.count(), per))
		}
	}
	return time.Since(start)
}

// BenchmarkRouteVsRelay measures routed messages per second between online
// users (100 pairs, TLS 1.3, one stanza per write, up to 32 in flight per
// pair) on the in-process server, against a TLS relay that only decrypts
// and re-encrypts the same bytes between the same clients — rounds
// alternate; ratio is the median of route/relay rates. Clients run in the
// same process and count in the CPU.
func BenchmarkRouteVsRelay(b *testing.B) {
	srv := startServer(b, WithLimits(Limits{MaxConnsPerAddr: -1}))
	const pairs, window, rounds = 100, 32, 6
	route := serverRig(b, srv, pairs)
	relay := relayRig(b, srv.c2s.TLSConfig(), pairs)
	per := max(b.N/pairs/rounds, 10)
	route.blast(b, 10, window)
	relay.blast(b, 10, window)
	var rt, lt time.Duration
	var ratios []float64
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		a := route.blast(b, per, window)
		c := relay.blast(b, per, window)
		rt += a
		lt += c
		ratios = append(ratios, c.Seconds()/a.Seconds())
	}
	b.StopTimer()
	slices.Sort(ratios)
	n := float64(per * pairs * rounds)
	b.ReportMetric(n/rt.Seconds(), "msgs/s")
	b.ReportMetric(n/lt.Seconds(), "relay-msgs/s")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}

// BenchmarkRouteLatency sends at a fixed rate (open model: each message
// carries its scheduled time, so a slow server cannot hide behind a slowed
// sender) over 100 pairs and reports latency percentiles from schedule to
// receipt, for the server and for the TLS relay.
func BenchmarkRouteLatency(b *testing.B) {
	for _, rate := range []int{10000, 25000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			srv := startServer(b, WithLimits(Limits{MaxConnsPerAddr: -1}))
			const pairs = 100
			for _, kind := range []string{"route", "relay"} {
				var rig *routeRig
				if kind == "route" {
					rig = serverRig(b, srv, pairs)
				} else {
					rig = relayRig(b, srv.c2s.TLSConfig(), pairs)
				}
				total := max(b.N, rate*5)
				rig.paced(b, rate, total)
				h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
				for _, r := range rig.recv {
					h.Merge(r.hist)
				}
				pct := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
				b.ReportMetric(pct(50), kind+"-p50-ms")
				b.ReportMetric(pct(99), kind+"-p99-ms")
				b.ReportMetric(pct(99.9), kind+"-p99.9-ms")
			}
		})
	}
}

// paced sends total messages at rate per second, round-robin over the
// pairs, from one pacer that wakes every millisecond and stamps each
// message with its scheduled time.
func (rig *routeRig) paced(b *testing.B, rate, total int) {
	for _, r := range rig.recv {
		r.reset()
	}
	pairs := len(rig.senders)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	sent := 0
	tos := make([]string, pairs)
	for i := range tos {
		tos[i] = fmt.Sprintf("r%d@localhost", i)
	}
	for sent < total {
		now := time.Now()
		due := min(int(now.Sub(start)/interval)+1, total)
		for ; sent < due; sent++ {
			i := sent % pairs
			rig.senders[i].Write(stampedMessage(tos[i], start.Add(time.Duration(sent)*interval)))
		}
		time.Sleep(time.Until(start.Add(time.Duration(sent) * interval)))
	}
	per := total / pairs
	for i, r := range rig.recv {
		want := per
		if i < total%pairs {
			want++
		}
		if !r.waitFor(want, time.Minute) {
			rig.fail(b, fmt.Sprintf("pair %d: %d of %d received", i, r.count(), want))
		}
	}
}
