package chaos

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
)

// exchange sends a message from a to b's full JID and waits (bounded) for it.
func exchange(t *testing.T, a, b *xmppclient.Client, id string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Send(ctx, fmt.Sprintf("<message to='%s' type='chat' id='%s'><body>%s</body></message>", b.JID(), id, id)); err != nil {
		return err
	}
	_, err := b.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.ID == id })
	return err
}

// TestFloodsServeAuthenticated: with the server's default limits and a
// low open-file limit, one address floods every port (held off by the
// per-address caps) and many addresses flood every port (held off by the
// budget of unauthenticated connections). Sessions authenticated before
// keep exchanging messages, the admin socket and metrics answer, and a new
// client from another address logs in once the flood ends.
func TestFloodsServeAuthenticated(t *testing.T) {
	cfg := newConfig(t)
	cfg.NoFile = noFile
	c := mustStart(t, cfg)
	c.addUser("alice")
	c.addUser("bob")
	ctx := context.Background()
	alice, err := c.login(ctx, "alice", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := c.login(ctx, "bob", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{"c2s": c.addrs.C2S, "c2s_tls": c.addrs.C2STLS, "s2s": c.addrs.S2S, "http": c.addrs.HTTP}
	var all []net.Conn
	defer func() {
		for _, h := range all {
			h.Close()
		}
	}()
	// One address: 120 connections per port; the caps are 100 (c2s,
	// direct TLS, HTTPS) and 10 (s2s).
	one := netip.MustParseAddr("127.0.2.1")
	for _, name := range []string{"c2s", "c2s_tls", "s2s", "http"} {
		held, _ := flood(t, ports[name], one, 120)
		all = append(all, held...)
		refused := 0
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if refused = closedByServer(held); refused >= 120-100 {
				break
			}
		}
		t.Logf("RELIABILITY per-address flood on %s: %d of %d connections from one address refused", name, refused, len(held))
		if refused == 0 {
			t.Errorf("%s: no connection of a 120-connection flood from one address was refused", name)
		}
	}
	if err := exchange(t, alice, bob, "during-one"); err != nil {
		t.Fatalf("authenticated sessions during a one-address flood: %v", err)
	}
	// Many addresses: 8 addresses × 8 connections per port, under the
	// per-address caps but beyond the unauthenticated budget.
	for i := range 8 {
		src := netip.AddrFrom4([4]byte{127, 0, 3, byte(i + 1)})
		for _, name := range []string{"c2s", "c2s_tls", "s2s", "http"} {
			held, _ := flood(t, ports[name], src, 8)
			all = append(all, held...)
		}
	}
	if err := exchange(t, alice, bob, "during-many"); err != nil {
		t.Fatalf("authenticated sessions during a many-address flood: %v", err)
	}
	for _, k := range []string{"admin", "metrics"} {
		if err := c.checks()[k](); err != nil {
			t.Errorf("%s during the flood: %v", k, err)
		}
	}
	t.Logf("RELIABILITY floods: %d connections opened by the floods in all; authenticated sessions, admin and metrics served throughout", len(all))
	if !strings.Contains(c.log(), `msg="connections refused"`) {
		t.Errorf("refusals were not logged")
	}
	for _, h := range all {
		h.Close()
	}
	all = nil
	eventually(t, "a new login after the floods", func() error {
		cl, err := c.login(ctx, "alice", netip.MustParseAddr("127.0.4.1"))
		if err == nil {
			cl.Close(ctx)
		}
		return err
	})
	// No flooding address in the log; refusals are counted, not listed.
	for _, line := range strings.Split(c.log(), "\n") {
		if strings.Contains(line, "127.0.2.1") || strings.Contains(line, "127.0.3.") {
			t.Errorf("a flooding address in the log: %s", line)
		}
	}
}

// TestSlowloris holds connections on every port that send a byte now and
// then and never finish their stream header, TLS handshake, HTTP request
// or admin request: the server closes each within its handshake deadline
// and serves a legitimate client meanwhile.
func TestSlowloris(t *testing.T) {
	cfg := newConfig(t)
	cfg.NoFile = noFile
	cfg.Limits = reference.Limits{HandshakeTimeout: 2 * time.Second}
	c := mustStart(t, cfg)
	c.addUser("alice")
	ports := map[string]struct{ network, addr, drip string }{
		"c2s":     {"tcp", c.addrs.C2S, "<"},
		"c2s_tls": {"tcp", c.addrs.C2STLS, "\x16"},
		"s2s":     {"tcp", c.addrs.S2S, "<"},
		"http":    {"tcp", c.addrs.HTTP, "\x16"},
		"metrics": {"tcp", c.addrs.Metrics, "G"},
		"admin":   {"unix", c.addrs.Control, "{"},
	}
	type slow struct {
		name string
		conn net.Conn
	}
	var conns []slow
	for name, p := range ports {
		for i := range 20 {
			var d net.Dialer
			if p.network == "tcp" {
				d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 5, byte(i+1))}
			}
			conn, err := d.Dial(p.network, p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conns = append(conns, slow{name, conn})
		}
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			for _, s := range conns {
				s.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				s.conn.Write([]byte(ports[s.name].drip))
			}
		}
	}()
	defer close(stop)
	for _, k := range []string{"c2s", "admin", "metrics"} {
		if err := c.checks()[k](); err != nil {
			t.Errorf("%s during slowloris: %v", k, err)
		}
	}
	// Every slow connection is closed by the server (bounded wait: the
	// deadlines are 2 s for XMPP, 10 s for HTTP and admin).
	open := map[string]int{}
	for end := time.Now().Add(40 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		clear(open)
		for _, s := range conns {
			if closedByServer([]net.Conn{s.conn}) == 0 {
				open[s.name]++
			}
		}
		if len(open) == 0 {
			break
		}
	}
	if len(open) > 0 {
		t.Errorf("slowloris connections still open: %v", open)
	}
	t.Logf("RELIABILITY slowloris: %d slow connections on 6 ports all closed by the server; a legitimate client served meanwhile", len(conns))
}
