package interop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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
	"github.com/xmppcheck/xmppcheck/reference/s2s"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// Domains under .example (RFC 2606): never real, and unlike .test not
// answered locally by libunbound (Prosody's resolver), which serves the
// RFC 6761 names test., invalid. and onion. as NXDOMAIN itself.
const refDomain = "reference.example"

// peer is a real XMPP server in a container.
type peer struct {
	name, domain string
	image        string
	create       func(user, pw string) []string
	waitFor      wait.Strategy
	c            testcontainers.Container
	c2s, s2s     string // 127.0.0.1:port
}

// TestFederationWithRealServers exchanges a message in each direction
// between the reference server's s2s engine (in this process, listening on
// the private network's gateway so the containers can dial it) and Prosody
// and ejabberd (each in its container with its own domain), and shows that
// a Prosody limited to TLS 1.1 for s2s is refused both ways.
func TestFederationWithRealServers(t *testing.T) {
	dockerenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := dockerenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	targets := filepath.Join(root, "fixtures", "targets")

	// Images: the fixtures' Prosody and ejabberd, and a Prosody whose s2s
	// TLS is pinned to 1.1 (a variant overlay on the same Dockerfile).
	build := func(ctxDir, dockerfile, tag string, args map[string]string) {
		t.Helper()
		if err := dockerenv.BuildImage(ctx, ctxDir, dockerfile, tag, args); err != nil {
			t.Fatalf("build %s: %v", tag, err)
		}
	}
	build(targets, "ejabberd/Dockerfile", "xmppcheck-fixture/ejabberd:test", map[string]string{"CONFIG": "ejabberd/ejabberd.yml"})
	// Prosody variants (overlays Included by the fixture's configuration):
	// debug logging, shown when the test fails, and s2s pinned to TLS 1.1.
	varCtx := t.TempDir()
	if err := os.CopyFS(varCtx, os.DirFS(targets)); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"interop.cfg.lua": debugVariant, "s2s-tls11.cfg.lua": debugVariant + tls11Variant} {
		if err := os.WriteFile(filepath.Join(varCtx, "prosody", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build(varCtx, "prosody/Dockerfile", "xmppcheck-interop/prosody:test", map[string]string{"VARIANT": "prosody/interop.cfg.lua"})
	build(varCtx, "prosody/Dockerfile", "xmppcheck-interop/prosody-s2s-tls11:test", map[string]string{"VARIANT": "prosody/s2s-tls11.cfg.lua"})

	nw, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Remove(context.Background()) })
	gw := gateway(t, ctx, nw.ID)

	// The reference side listens on the network's gateway (the host's
	// address on the private network) on a free port. Peers find it the
	// way they would find any server: a DNS SRV record for
	// _xmpp-server._tcp.reference.example, served by a test DNS server on the
	// gateway that Docker's resolver forwards to (containers run with
	// --dns pointing at it).
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatalf("listen on the Docker network's gateway: %v", err)
	}
	refPort := uint16(ln.Addr().(*net.TCPAddr).Port)
	gwAddr := netip.MustParseAddr(gw)
	startDNS(t, net.JoinHostPort(gw, "53"),
		map[string]uint16{refDomain + ".": refPort},
		map[string]netip.Addr{refDomain + ".": gwAddr})

	prosody := &peer{name: "prosody", domain: "prosody.example", image: "xmppcheck-interop/prosody:test",
		create:  func(u, pw string) []string { return []string{"prosodyctl", "register", u, "prosody.example", pw} },
		waitFor: wait.ForLog("Activated service 'c2s'").WithStartupTimeout(90 * time.Second)}
	ejabberd := &peer{name: "ejabberd", domain: "ejabberd.example", image: "xmppcheck-fixture/ejabberd:test",
		create:  func(u, pw string) []string { return []string{"ejabberdctl", "register", u, "ejabberd.example", pw} },
		waitFor: wait.ForListeningPort("5222/tcp").WithStartupTimeout(120 * time.Second)}
	old := &peer{name: "prosody-s2s-tls11", domain: "old.example", image: "xmppcheck-interop/prosody-s2s-tls11:test",
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

	// The reference server's s2s engine, with the policy's TLS floor.
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	got := make(chan s2s.Stanza, 100)
	opts := []s2s.Option{
		s2s.WithPolicy(pol), s2s.WithCertificates(selfSigned(t, refDomain)), s2s.WithStaticHostsOnly(),
		s2s.WithSetupTimeout(60 * time.Second),
		s2s.WithLogger(slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), nil))),
		s2s.WithDeliver(func(_ context.Context, st s2s.Stanza) { got <- st }),
	}
	for _, p := range peers {
		opts = append(opts, s2s.WithHost(p.domain, p.s2s))
	}
	ref, err := s2s.New(refDomain, opts...)
	if err != nil {
		t.Fatal(err)
	}
	go ref.Serve(ln)
	t.Cleanup(func() { ref.Close() })

	for _, p := range []*peer{prosody, ejabberd} {
		t.Run(p.name, func(t *testing.T) {
			cl := p.login(ctx, t, "alice", nil)
			// Peer → reference.
			body := "hello reference, from " + p.name
			if err := cl.Send(ctx, "<message to='bob@"+refDomain+"' type='chat' id='to-ref'><body>"+body+"</body></message>"); err != nil {
				t.Fatal(err)
			}
			st := waitFor(t, got, 3*time.Minute, func(st s2s.Stanza) bool { return st.From.Domainpart() == p.domain })
			if st.Name != "message" || st.From.Localpart() != "alice" || st.To.String() != "bob@"+refDomain || !strings.Contains(string(st.Raw), body) {
				t.Fatalf("reference received %s", st.Raw)
			}
			// Reference → peer.
			reply := "hello " + p.name + ", from the reference"
			out, err := s2s.ParseStanza([]byte("<message from='bob@" + refDomain + "/desk' to='" + cl.JID() + "' type='chat' id='from-ref'><body>" + reply + "</body></message>"))
			if err != nil {
				t.Fatal(err)
			}
			if err := ref.Send(ctx, out); err != nil {
				t.Fatal(err)
			}
			rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
			defer rcancel()
			m, err := cl.RecvMatch(rctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" })
			if err != nil {
				t.Fatalf("no message from the reference: %v", err)
			}
			if m.Type == "error" || m.Body() != reply || !strings.HasPrefix(m.From, "bob@"+refDomain) {
				t.Fatalf("%s received %s", p.name, m.Raw)
			}
		})
	}

	t.Run("TLS 1.1 peer refused", func(t *testing.T) {
		// Reference → old: the TLS handshake fails at our floor and the
		// message bounces to its sender.
		out, _ := s2s.ParseStanza([]byte("<message from='bob@" + refDomain + "/desk' to='alice@old.example' type='chat' id='to-old'><body>never</body></message>"))
		if err := ref.Send(ctx, out); err != nil {
			t.Fatal(err)
		}
		st := waitFor(t, got, 3*time.Minute, func(st s2s.Stanza) bool { return st.ID == "to-old" })
		if st.Type != "error" || s2s.ErrorCondition(st) != stanza.RemoteServerNotFound {
			t.Fatalf("reference → TLS 1.1 peer: got %s, want a remote-server-not-found bounce", st.Raw)
		}
		// Old → reference: our inbound handshake refuses it; the peer
		// bounces the message to its client, and nothing reaches us.
		cl := old.login(ctx, t, "carol", nil)
		if err := cl.Send(ctx, "<message to='bob@"+refDomain+"' type='chat' id='from-old'><body>via TLS 1.1</body></message>"); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
		defer rcancel()
		m, err := cl.RecvMatch(rctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" && s.ID == "from-old" })
		if err != nil {
			t.Fatalf("the TLS 1.1 peer never bounced: %v", err)
		}
		if m.Type != "error" {
			t.Fatalf("got %s, want an error", m.Raw)
		}
		select {
		case st := <-got:
			if st.From.Domainpart() == "old.example" {
				t.Fatalf("a stanza from the TLS 1.1 peer was delivered: %s", st.Raw)
			}
		default:
		}
		if !strings.Contains(logs.String(), "inbound TLS handshake refused") {
			t.Error("no refused inbound handshake in the reference's log")
		}
	})
}

// debugVariant logs everything to the container output.
const debugVariant = `log = { debug = "*console" }
`

// tls11Variant pins Prosody's s2s TLS to 1.1 only (OpenSSL 3 needs security
// level 0 for it); c2s keeps the base configuration.
const tls11Variant = `-- s2s limited to TLS 1.1 (xmppcheck federation test).
s2s_ssl = {
	certificate = "/etc/prosody/certs/xmpp.crt";
	key = "/etc/prosody/certs/xmpp.key";
	protocol = "tlsv1_1";
	ciphers = "DEFAULT:@SECLEVEL=0";
}
`

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

func (p *peer) login(ctx context.Context, t *testing.T, user string, opts []xmppclient.Option) *xmppclient.Client {
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

func waitFor(t *testing.T, ch <-chan s2s.Stanza, d time.Duration, match func(s2s.Stanza) bool) s2s.Stanza {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case st := <-ch:
			if match(st) {
				return st
			}
			t.Logf("ignored %s", st.Raw)
		case <-deadline:
			t.Fatalf("nothing delivered within %v", d)
		}
	}
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

func selfSigned(t *testing.T, domain string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
