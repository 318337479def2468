package target

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// dnsServer serves zone (SRV records by name) on a loopback UDP port and
// returns a resolver that asks only it.
func dnsServer(t *testing.T, zone map[string][]dns.RR) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if rrs, ok := zone[req.Question[0].Name]; ok && req.Question[0].Qtype == dns.TypeSRV {
			m.Answer = rrs
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
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func srv(t *testing.T, name string, prio, weight, port uint16, target string) dns.RR {
	t.Helper()
	return &dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
		Priority: prio, Weight: weight, Port: port, Target: target}
}

// TestResolveDomain (issue 12, item 2): --remote DOMAIN finds the client,
// direct-TLS client and server ports by SRV, against an in-process DNS
// server on loopback.
func TestResolveDomain(t *testing.T) {
	r := dnsServer(t, map[string][]dns.RR{
		"_xmpp-client._tcp.example.org.": {
			srv(t, "_xmpp-client._tcp.example.org.", 20, 0, 5999, "backup.example.org."),
			srv(t, "_xmpp-client._tcp.example.org.", 10, 0, 15222, "xmpp.example.org."),
		},
		"_xmpps-client._tcp.example.org.":  {srv(t, "_xmpps-client._tcp.example.org.", 10, 0, 443, "tls.example.org.")},
		"_xmpp-server._tcp.example.org.":   {srv(t, "_xmpp-server._tcp.example.org.", 10, 0, 15269, "s2s.example.org.")},
		"_xmpp-client._tcp.nossl.example.": {srv(t, "_xmpp-client._tcp.nossl.example.", 0, 0, 0, ".")},
	})
	ctx := context.Background()
	tests := []struct {
		domain  string
		want    Addrs
		wantErr bool
	}{
		{"example.org", Addrs{C2S: "xmpp.example.org:15222", C2STLS: "tls.example.org:443", S2S: "s2s.example.org:15269"}, false},
		// no records at all: the RFC 6120 §3.2.2 fallback
		{"plain.example", Addrs{C2S: "plain.example:5222", S2S: "plain.example:5269"}, false},
		// "." : no client service
		{"nossl.example", Addrs{}, true},
	}
	for _, tt := range tests {
		got, err := ResolveDomain(ctx, r, tt.domain)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v, want error %v", tt.domain, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.domain, got, tt.want)
		}
	}
}
