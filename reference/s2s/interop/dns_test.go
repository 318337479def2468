package interop_test

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// testDNS answers the containers' DNS queries (Docker's embedded resolver
// forwards to it what the network's own names do not cover): SRV and A
// records that send the peers to the reference server on the gateway, and an
// immediate NXDOMAIN for everything else, so that no query leaves the
// machine and no peer waits for a resolver timeout.
type testDNS struct {
	pc   net.PacketConn
	logf func(string, ...any)

	mu  sync.Mutex
	srv map[string]uint16     // _xmpp-server._tcp.DOMAIN. → port (target DOMAIN.)
	a   map[string]netip.Addr // DOMAIN. → address
}

// set publishes domain's s2s service at addr:port.
func (d *testDNS) set(domain string, addr netip.Addr, port uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[domain+"."] = port
	d.a[domain+"."] = addr
}

func startDNS(t *testing.T, addr string) *testDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("test DNS on %s: %v", addr, err)
	}
	d := &testDNS{pc: pc, srv: map[string]uint16{}, a: map[string]netip.Addr{}, logf: t.Logf}
	t.Cleanup(func() { pc.Close() })
	go d.serve()
	return d
}

func (d *testDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := d.answer(buf[:n]); ok {
			d.pc.WriteTo(resp, from)
		}
	}
}

func (d *testDNS) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	d.mu.Lock()
	defer d.mu.Unlock()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
	found := false
	var answers []func() error
	switch q.Type {
	case dnsmessage.TypeSRV:
		if dom, ok := strings.CutPrefix(name, "_xmpp-server._tcp."); ok {
			if port, ok := d.srv[dom]; ok {
				found = true
				target := dnsmessage.MustNewName(dom)
				answers = append(answers, func() error {
					return b.SRVResource(rh, dnsmessage.SRVResource{Priority: 0, Weight: 0, Port: port, Target: target})
				})
			}
		}
	case dnsmessage.TypeA:
		if ip, ok := d.a[name]; ok {
			found = true
			answers = append(answers, func() error { return b.AResource(rh, dnsmessage.AResource{A: ip.As4()}) })
		}
	}
	if !found {
		_, known := d.a[name]
		if !known {
			b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
				RecursionDesired: h.RecursionDesired, RCode: dnsmessage.RCodeNameError})
		}
	}
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	b.Question(q)
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	for _, f := range answers {
		if err := f(); err != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil, false
	}
	d.logf("test DNS: %s %s → found %v", q.Type, name, found)
	return out, true
}
