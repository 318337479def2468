package interop_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
)

// BenchmarkReferenceS2S measures the message rate between two reference
// servers on loopback, client to client: alice@a.example sends over c2s,
// a.example relays over s2s (TLS, dialback), b.example delivers to
// bob@b.example. In the same run it measures the same traffic delivered
// locally (alice@a.example → carol@a.example) and reports the ratio: what
// federation costs over local delivery. The two alternate in blocks of
// 1000 messages, so both see the same load on a shared machine. All of a
// block's messages are sent at once: thousands may wait unread in bob's
// inbox, which the client drains in constant time per stanza.
//
//	go test -run '^$' -bench ReferenceS2S -benchtime 20000x ./reference/s2s/interop
func BenchmarkReferenceS2S(b *testing.B) {
	addrA, addrB := freeAddr(b), freeAddr(b)
	a := startReference(b, "a.example", addrA, reference.WithS2SHost("b.example", addrB))
	bs := startReference(b, "b.example", addrB, reference.WithS2SHost("a.example", addrA))
	alice := connect(b, a, "alice")
	bob := connect(b, bs, "bob")
	carol := connect(b, a, "carol")
	body := fmt.Sprintf("%0150d", 0)
	run := func(to string, rcv *xmppclient.Client, n int) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			for i := range n {
				if _, err := rcv.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" }); err != nil {
					done <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
			done <- nil
		}()
		t0 := time.Now()
		for range n {
			if err := alice.Send(ctx, "<message to='"+to+"' type='chat'><body>"+body+"</body></message>"); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	// Warm up: the s2s streams are set up before timing.
	run("bob@b.example", bob, 10)
	run("carol@a.example", carol, 10)
	// Interleaved in blocks so that both see the same machine load.
	const block = 1000
	var fed, local time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		fed += run("bob@b.example", bob, n)
		local += run("carol@a.example", carol, n)
	}
	b.StopTimer()
	fedRate, localRate := float64(b.N)/fed.Seconds(), float64(b.N)/local.Seconds()
	b.ReportMetric(fedRate, "s2s-msgs/s")
	b.ReportMetric(localRate, "local-msgs/s")
	b.ReportMetric(fedRate/localRate, "ratio")
}
