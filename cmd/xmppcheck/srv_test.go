package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
)

// TestRemoteDomainBySRV (issue 12, item 2): --remote DOMAIN finds the
// server by its _xmpp-client._tcp record (an in-process DNS server on
// loopback answers), --domain defaults to DOMAIN, and the accounts come
// from the environment.
func TestRemoteDomainBySRV(t *testing.T) {
	s := fakexmpp.Start(t, fakexmpp.WithDomain("example.test"))
	s.AddUser("probe", "hunter2-probe-pw")
	_, port, _ := net.SplitHostPort(s.Addr())
	p, _ := strconv.Atoi(port)

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if q := req.Question[0]; q.Qtype == dns.TypeSRV && q.Name == "_xmpp-client._tcp.example.test." {
			m.Answer = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
				Priority: 10, Port: uint16(p), Target: "localhost."}}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	old := srvResolver
	t.Cleanup(func() { srvResolver = old })
	srvResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}

	t.Setenv(accountsEnv, "probe@example.test:hunter2-probe-pw")
	code, out, stderr := runIn(t, "doctor", "--remote", "example.test")
	for _, w := range []string{"ok       SRV example.test", "c2s localhost:" + port, "s2s example.test:5269",
		"ok       reach localhost:" + port, "ok       login probe@example.test"} {
		if !strings.Contains(out, w) {
			t.Errorf("lacks %q:\n%s%s", w, out, stderr)
		}
	}
	if code != exitOK {
		t.Errorf("exit %d", code)
	}
}
