package s2s

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// emfileListener fails its first n accepts with EMFILE, as a process out
// of descriptors does.
type emfileListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.n > 0 {
		l.n--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestServeSurvivesEMFILE is finding 1 of issue 10 for s2s: Serve returned
// on the first "too many open files" and the port never answered again.
// Now the accept is retried and a peer federates after the burst.
func TestServeSurvivesEMFILE(t *testing.T) {
	lnA := listen(t)
	lnB := &emfileListener{Listener: listen(t), n: 5}
	a := startNode(t, "a.test", lnA, issue(t, nil, "a.test"), WithHost("b.test", lnB.Addr().String()))
	b := startNode(t, "b.test", nil, issue(t, nil, "b.test"), WithHost("a.test", lnA.Addr().String()))
	served := make(chan error, 1)
	go func() { served <- b.srv.Serve(lnB) }()
	if err := a.srv.Send(context.Background(), mustStanza(t, `<message from='alice@a.test' to='bob@b.test' id='e1'><body>x</body></message>`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned after EMFILE: %v", err)
	default:
	}
	if got := b.waitStanza(t); got.ID != "e1" {
		t.Fatalf("got %+v", got)
	}
	if n := strings.Count(b.logs.String(), "accept failing"); n != 1 {
		t.Errorf("the burst of 5 EMFILE was logged %d times, want once:\n%s", n, b.logs.String())
	}
}

// TestOneAddressCannotBlockFederation is finding 2 of issue 10: idle
// connections from one address filled the inbound streams and a real
// peer's stanzas bounced remote-server-not-found. Now one address holds at
// most its per-address share and the peer (another address) gets in.
func TestOneAddressCannotBlockFederation(t *testing.T) {
	const maxInbound, flood = 20, 40
	a, b := pair(t, nil, []Option{WithSetupTimeout(20 * time.Second)}, []Option{WithMaxInbound(maxInbound)})
	// The flood comes from 127.0.0.99; the peer dials from 127.0.0.1.
	var held []net.Conn
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 99)}}
	for range flood {
		c, err := d.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Wait (bounded) until the server has taken in the flood: every
	// connection beyond the cap has been closed by it.
	for end := time.Now().Add(10 * time.Second); b.srv.Stats().Inbound < min(DefaultMaxInboundPerAddr, maxInbound); {
		if time.Now().After(end) {
			t.Fatalf("the flood never arrived: %+v", b.srv.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.srv.Send(context.Background(), mustStanza(t, `<message from='alice@a.test' to='bob@b.test' id='f1'><body>x</body></message>`)); err != nil {
		t.Fatal(err)
	}
	got := b.waitStanza(t)
	if got.ID != "f1" {
		t.Fatalf("the peer's message did not arrive: %+v", got)
	}
	if in := b.srv.Stats().Inbound; in > DefaultMaxInboundPerAddr+1 {
		t.Errorf("%d inbound streams open, want at most %d from the flood plus the peer", in, DefaultMaxInboundPerAddr)
	}
}
