package interop_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
)

// Domains under .example (RFC 2606): never real, and unlike .test not
// answered locally by libunbound (Prosody's resolver), which serves the
// RFC 6761 names test., invalid. and onion. as NXDOMAIN itself.
const refDomain = "reference.example"

// peer is a real XMPP server in a container.
type peer struct {
	name, domain string
	image        string
	env          map[string]string
	create       func(user, pw string) []string
	waitFor      wait.Strategy
	c            testcontainers.Container
	c2s, s2s     string // 127.0.0.1:port
}

// TestFederationWithRealServers exchanges a message in each direction
// between a user of the reference server and users of Prosody and ejabberd
// (each in its container with its own domain, on a private Docker network),
// and shows that a Prosody limited to TLS 1.1 is refused both ways.
//
// The reference server runs in this process; its s2s listener is on the
// network's gateway (the host's address on the private network), which the
// containers reach. They find it the way they would find any server: an
// SRV record for _xmpp-server._tcp.reference.example, served by a test DNS
// server on the gateway that the containers use as their upstream resolver.
// The reference server reaches them on their s2s ports published on
// 127.0.0.1 (WithS2SHost).
func TestFederationWithRealServers(t *testing.T) {
	dockerenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := dockerenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	targets := filepath.Join(root, "fixtures", "targets")
	for _, img := range []struct{ dockerfile, tag string }{
		{"prosody/Dockerfile", "xmppcheck-fixture/prosody:test"},
		{"ejabberd/Dockerfile", "xmppcheck-fixture/ejabberd:test"},
	} {
		if err := dockerenv.BuildImage(ctx, targets, img.dockerfile, img.tag, nil); err != nil {
			t.Fatalf("build %s: %v", img.tag, err)
		}
	}

	nw, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Remove(context.Background()) })
	gw := gateway(t, ctx, nw.ID)
	gwAddr := netip.MustParseAddr(gw)
	dns := startDNS(t, net.JoinHostPort(gw, "53"))

	prosody := &peer{name: "prosody", domain: "prosody.example", image: "xmppcheck-fixture/prosody:test",
		create:  func(u, pw string) []string { return []string{"prosodyctl", "register", u, "prosody.example", pw} },
		waitFor: wait.ForLog("Activated service 'c2s'").WithStartupTimeout(90 * time.Second)}
	ejabberd := &peer{name: "ejabberd", domain: "ejabberd.example", image: "xmppcheck-fixture/ejabberd:test",
		create:  func(u, pw string) []string { return []string{"ejabberdctl", "register", u, "ejabberd.example", pw} },
		waitFor: wait.ForListeningPort("5222/tcp").WithStartupTimeout(120 * time.Second)}
	// The fixture's TLS switch: c2s and s2s offer TLS 1.1 only.
	old := &peer{name: "prosody-tls1.1", domain: "old.example", image: "xmppcheck-fixture/prosody:test",
		env:     map[string]string{"XMPP_TLS": "1.1-only"},
		create:  func(u, pw string) []string { return []string{"prosodyctl", "register", u, "old.example", pw} },
		waitFor: wait.ForLog("Activated service 'c2s'").WithStartupTimeout(90 * time.Second)}
	peers := []*peer{prosody, ejabberd, old}
	var wg sync.WaitGroup
	errs := make([]error, len(peers))
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.start(ctx, t, nw, gwAddr)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// The reference server, with the policy's TLS floor on s2s.
	opts := []reference.Option{reference.WithS2SStaticHostsOnly()}
	for _, p := range peers {
		opts = append(opts, reference.WithS2SHost(p.domain, p.s2s))
	}
	ref := startReference(t, refDomain, net.JoinHostPort(gw, "0"), opts...)
	_, port, _ := net.SplitHostPort(ref.Addrs().S2S)
	n, _ := strconv.Atoi(port)
	dns.set(refDomain, gwAddr, uint16(n))
	bob := connect(t, ref, "bob")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reference server log:\n%s", ref.Logs.String())
		}
	})

	for _, p := range []*peer{prosody, ejabberd} {
		t.Run(p.name, func(t *testing.T) {
			cl := p.login(ctx, t, "alice")
			// Peer → reference.
			body := "hello reference, from " + p.name
			if err := cl.Send(ctx, "<message to='bob@"+refDomain+"' type='chat' id='to-ref'><body>"+body+"</body></message>"); err != nil {
				t.Fatal(err)
			}
			m := recvFrom(t, bob, 3*time.Minute, func(s xmppclient.Stanza) bool {
				return s.Kind() == "message" && strings.HasSuffix(bareOf(s.From), "@"+p.domain)
			})
			if m.Type == "error" || m.Body() != body || bareOf(m.From) != "alice@"+p.domain {
				t.Fatalf("bob received %s", m.Raw)
			}
			// Reference → peer.
			reply := "hello " + p.name + ", from the reference"
			if err := bob.Send(ctx, "<message to='"+cl.JID()+"' type='chat' id='from-ref'><body>"+reply+"</body></message>"); err != nil {
				t.Fatal(err)
			}
			m = recvFrom(t, cl, 3*time.Minute, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
			if m.Type == "error" || m.Body() != reply || bareOf(m.From) != "bob@"+refDomain {
				t.Fatalf("%s received %s", p.name, m.Raw)
			}
		})
	}

	t.Run("TLS 1.1 peer refused", func(t *testing.T) {
		// Reference → old: our handshake refuses TLS 1.1 and the message
		// bounces to its sender.
		if err := bob.Send(ctx, "<message to='alice@old.example' type='chat' id='to-old'><body>never</body></message>"); err != nil {
			t.Fatal(err)
		}
		e := recvFrom(t, bob, 3*time.Minute, func(s xmppclient.Stanza) bool { return s.ID == "to-old" })
		var se *xmppclient.StanzaError
		if !errors.As(e.Err(), &se) || se.Condition != stanza.RemoteServerNotFound {
			t.Fatalf("reference → TLS 1.1 peer: got %s, want remote-server-not-found", e.Raw)
		}
		// Old → reference: our inbound handshake refuses it; the peer
		// bounces the message to its client and nothing reaches bob.
		cl := old.login(ctx, t, "carol", xmppclient.WithTLSVersions(tls.VersionTLS10, tls.VersionTLS11))
		if err := cl.Send(ctx, "<message to='bob@"+refDomain+"' type='chat' id='from-old'><body>via TLS 1.1</body></message>"); err != nil {
			t.Fatal(err)
		}
		m := recvFrom(t, cl, 3*time.Minute, func(s xmppclient.Stanza) bool { return s.Kind() == "message" && s.ID == "from-old" })
		if m.Type != "error" {
			t.Fatalf("got %s, want an error", m.Raw)
		}
		// The peer has the TLS alert (and bounces) before the reference
		// server's handshake goroutine has written its log line: wait for
		// the line, within a bound.
		logged := false
		for deadline := time.Now().Add(10 * time.Second); !logged && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			logged = strings.Contains(ref.Logs.String(), "inbound TLS handshake refused")
		}
		if !logged {
			t.Error("no refused inbound handshake in the reference server's log")
		}
		// The refusal is what stopped it (above); bob's queue holds nothing
		// from old.example either.
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		defer rcancel()
		if s, err := bob.RecvMatch(rctx, func(s xmppclient.Stanza) bool { return strings.HasSuffix(bareOf(s.From), "@old.example") }); err == nil {
			t.Fatalf("bob received %s from the TLS 1.1 peer", s.Raw)
		}
	})
}

func bareOf(j string) string {
	b, _, _ := strings.Cut(j, "/")
	return b
}

func recvFrom(t *testing.T, cl *xmppclient.Client, d time.Duration, match func(xmppclient.Stanza) bool) xmppclient.Stanza {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	s, err := cl.RecvMatch(ctx, match)
	if err != nil {
		t.Fatalf("nothing received within %v: %v", d, err)
	}
	return s
}

// withDNS makes the test DNS server the container's upstream resolver.
func withDNS(addr netip.Addr) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.DNS = []netip.Addr{addr}
		hc.DNSOptions = []string{"timeout:2", "attempts:2"}
	})
}

func (p *peer) start(ctx context.Context, t *testing.T, nw *testcontainers.DockerNetwork, dns netip.Addr) error {
	c, err := testcontainers.Run(ctx, p.image,
		dockerenv.WithLoopbackPorts("5222/tcp", "5269/tcp"),
		testcontainers.WithEnv(map[string]string{"DOMAIN": p.domain}),
		testcontainers.WithEnv(p.env),
		network.WithNetwork([]string{p.domain}, nw),
		withDNS(dns),
		testcontainers.WithWaitStrategy(p.waitFor),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		return fmt.Errorf("start %s: %w%s", p.name, err, logsOf(ctx, c))
	}
	p.c = c
	for port, dst := range map[string]*string{"5222/tcp": &p.c2s, "5269/tcp": &p.s2s} {
		mp, err := c.MappedPort(ctx, port)
		if err != nil {
			return err
		}
		*dst = net.JoinHostPort("127.0.0.1", mp.Port())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s output:%s", p.name, logsOf(context.Background(), c))
		}
	})
	return nil
}

func (p *peer) login(ctx context.Context, t *testing.T, user string, opts ...xmppclient.Option) *xmppclient.Client {
	t.Helper()
	const pw = "interop-test-pw-1"
	code, r, err := p.c.Exec(ctx, p.create(user, pw))
	if err != nil || code != 0 {
		out := ""
		if r != nil {
			b, _ := io.ReadAll(r)
			out = string(b)
		}
		t.Fatalf("create %s on %s: exit %d, %v\n%s", user, p.name, code, err, out)
	}
	opts = append([]xmppclient.Option{xmppclient.WithDomain(p.domain), xmppclient.WithInsecureSkipVerify(),
		xmppclient.WithTimeout(30 * time.Second), xmppclient.WithIdleTimeout(10 * time.Minute)}, opts...)
	cl, err := xmppclient.Connect(ctx, p.c2s, user, pw, opts...)
	if err != nil {
		t.Fatalf("log in to %s: %v", p.name, err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	if err := cl.Send(ctx, "<presence/>"); err != nil {
		t.Fatal(err)
	}
	return cl
}

// gateway returns the IPv4 gateway of a Docker network: the host's address
// on it.
func gateway(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	res, err := cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway.String()
		}
	}
	t.Fatalf("network %s has no IPv4 gateway", id)
	return ""
}

func logsOf(ctx context.Context, c testcontainers.Container) string {
	if c == nil {
		return ""
	}
	r, err := c.Logs(ctx)
	if err != nil {
		return ""
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	s := string(b)
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return "\n--- container output (tail) ---\n" + s
}
