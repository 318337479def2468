package s2s

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// BenchmarkS2SMessages measures the message rate between two servers on
// loopback over an established, authenticated stream (TLS 1.3, dialback):
// Send on a.test → Deliver on b.test, 200-byte chat messages. As a floor
// it measures, in the same run, the same bytes written over a bare TLS
// connection on loopback and split into top-level elements by
// encoding/xml on the other side, and reports the ratio.
//
//	go test -run '^$' -bench S2SMessages -benchtime 200000x ./reference/s2s
func BenchmarkS2SMessages(b *testing.B) {
	quiet := WithLogger(slog.New(slog.DiscardHandler))
	lnA, lnB := listen(b), listen(b)
	delivered := make(chan struct{}, 1024)
	mk := func(domain string, ln net.Listener, peer string, peerLn net.Listener, deliver DeliverFunc) *Server {
		srv, err := New(domain, WithCertificates(issue(b, nil, domain)), WithStaticHostsOnly(), quiet,
			WithHost(peer, peerLn.Addr().String()), WithDeliver(deliver), WithQueueLimit(1<<20))
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		return srv
	}
	a := mk("a.test", lnA, "b.test", lnB, func(context.Context, Stanza) {})
	mk("b.test", lnB, "a.test", lnA, func(context.Context, Stanza) { delivered <- struct{}{} })
	raw := fmt.Sprintf(`<message from='alice@a.test/bench' to='bob@b.test' type='chat' id='m'><body>%0150d</body></message>`, 0)
	st, err := ParseStanza([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Warm up: the stream is set up and authenticated before timing.
	a.Send(ctx, st)
	<-delivered

	floor := tlsFloor(b, []byte(raw))
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	t0 := time.Now()
	go func() {
		for range b.N {
			if err := a.Send(ctx, st); err != nil {
				panic(err)
			}
		}
	}()
	for range b.N {
		<-delivered
	}
	el := time.Since(t0)
	b.StopTimer()
	rate := float64(b.N) / el.Seconds()
	floorRate := floor(b.N)
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(floorRate, "tls-floor-msgs/s")
	b.ReportMetric(rate/floorRate, "ratio")
}

// tlsFloor returns a function that pushes n copies of raw through a bare
// loopback TLS connection into an element splitter and returns the rate.
func tlsFloor(b *testing.B, raw []byte) func(n int) float64 {
	cert := issue(b, nil, "floor.test")
	ln := listen(b)
	b.Cleanup(func() { ln.Close() })
	return func(n int) float64 {
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			sr := newStreamReader(tc, DefaultMaxElement)
			if _, err := sr.header(); err != nil {
				done <- err
				return
			}
			for range n {
				if _, err := sr.next(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		t0 := time.Now()
		io.WriteString(c, streamHeader("a.test", "b.test", ""))
		for range n {
			if _, err := c.Write(raw); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return float64(n) / time.Since(t0).Seconds()
	}
}
