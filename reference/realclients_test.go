package reference

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
	"github.com/xmppcheck/xmppcheck/internal/testenv"
	"github.com/xmppcheck/xmppcheck/spec"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// permissivePolicy is the default policy with the c2s TLS floor lowered to
// 1.0: the positive control showing a client CAN negotiate old versions,
// so that their refusal by the default server is the server's doing.
func permissivePolicy(t *testing.T) *spec.Policy {
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pol.Claims {
		if c.ID == spec.TLSC2SMinVersion {
			p := spec.Params{}
			for k, v := range c.Params {
				p[k] = v
			}
			v := p["min"]
			v.TLS = tls.VersionTLS10
			p["min"] = v
			pol.Claims[i].Params = p
		}
	}
	return pol
}

func startWithPolicy(t *testing.T, pol *spec.Policy) *Server {
	root := t.TempDir()
	srv, err := New(pol, WithDataDir(filepath.Join(root, "d")), WithKeyFile(filepath.Join(root, "k")),
		WithC2SAddr("127.0.0.1:0"), WithC2STLSAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestGoSendxmpp: go-sendxmpp (Debian) logs in with SCRAM-SHA-1 over
// STARTTLS and sends a message that a second go-sendxmpp --listen receives.
func TestGoSendxmpp(t *testing.T) {
	bin := testenv.RequireTool(t, "Debian package go-sendxmpp (bookworm-backports, ≥ 0.14: SCRAM), "+testenv.HostPackages, "go-sendxmpp")
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	m := regexp.MustCompile(`(?i)go-sendxmpp (\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("cannot read go-sendxmpp's version: %s", out)
	}
	if minor, _ := strconv.Atoi(string(m[2])); string(m[1]) == "0" && minor < 14 {
		msg := "go-sendxmpp " + string(m[0]) + " has no SCRAM (bookworm ships 0.5.6, PLAIN only); install 0.14 from bookworm-backports"
		testenv.Missing(t, msg)
	}
	srv := startServer(t)
	srv.user(t, "alice", "alice-pw")
	srv.user(t, "bob", "bob-pw")
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	common := []string{"-j", srv.Addrs().C2S, "-n", "--scram-mech-pinning", "SCRAM-SHA-1", "--suppress-root-warning", "--fast-off", "--timeout", "20"}
	listenOut := &syncbuf.Buffer{}
	listener := exec.CommandContext(ctx, bin, append([]string{"-u", "bob@localhost", "-p", "bob-pw", "--listen"}, common...)...)
	listener.Env = append(os.Environ(), "HOME="+home)
	listener.Stdout = listenOut
	listener.Stderr = listenOut
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { listener.Process.Kill(); listener.Wait() }()
	// Wait until the listener is online (bounded).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if all, _ := srv.router.Available("bob"); all > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener never came online:\n%s", listenOut.String())
		}
	}
	send := exec.CommandContext(ctx, bin, append([]string{"-u", "alice@localhost", "-p", "alice-pw"}, append(common, "bob@localhost")...)...)
	send.Env = append(os.Environ(), "HOME="+home)
	send.Stdin = strings.NewReader("hello-from-go-sendxmpp\n")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("go-sendxmpp send: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(listenOut.String(), "hello-from-go-sendxmpp"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the listener never printed the message:\n%s", listenOut.String())
		}
	}
	if n := testutil.ToFloat64(srv.metrics.Auth.WithLabelValues("SCRAM-SHA-1", "success")); n != 2 {
		t.Fatalf("%v SCRAM-SHA-1 logins, want 2 (sender and listener)", n)
	}
	if !strings.Contains(listenOut.String(), "alice@localhost") {
		t.Fatalf("listener output lacks the sender: %s", listenOut.String())
	}
}

// sClient runs openssl s_client -starttls xmpp with one protocol version
// and reports the negotiated protocol ("" when the handshake failed).
func sClient(t *testing.T, bin, addr, version string) (string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "s_client", "-starttls", "xmpp", "-xmpphost", "localhost", "-connect", addr,
		"-"+version, "-cipher", "DEFAULT:@SECLEVEL=0")
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	// "New, …, Cipher is X" names the cipher ((NONE) when the handshake
	// failed); the session's "Protocol :" line the version.
	c := regexp.MustCompile(`New, \S+, Cipher is (\S+)`).FindSubmatch(out)
	p := regexp.MustCompile(`Protocol\s*:\s*(TLSv[0-9.]+)`).FindSubmatch(out)
	if c == nil || p == nil || string(c[1]) == "(NONE)" {
		return "", string(out)
	}
	return string(p[1]), string(out)
}

// TestOpenSSLStartTLSFloor: openssl s_client -starttls xmpp with TLS 1.1 is
// refused and with TLS 1.2 succeeds (tls.c2s-min-version); the same client
// negotiates TLS 1.1 with a server whose floor is 1.0 (positive control).
func TestOpenSSLStartTLSFloor(t *testing.T) {
	bin := testenv.RequireTool(t, "Debian package openssl, "+testenv.HostPackages, "openssl")
	srv := startServer(t)
	if got, out := sClient(t, bin, srv.Addrs().C2S, "tls1_2"); got != "TLSv1.2" {
		t.Fatalf("TLS 1.2 refused:\n%s", out)
	}
	loose := startWithPolicy(t, permissivePolicy(t))
	if got, out := sClient(t, bin, loose.Addrs().C2S, "tls1_1"); got != "TLSv1.1" {
		t.Fatalf("positive control: openssl cannot negotiate TLS 1.1 even with a server that allows it:\n%s", out)
	}
	if got, out := sClient(t, bin, srv.Addrs().C2S, "tls1_1"); got != "" {
		t.Fatalf("TLS 1.1 accepted (%s):\n%s", got, out)
	} else if !strings.Contains(out, "protocol version") {
		t.Fatalf("TLS 1.1 failed, but not with a protocol_version alert:\n%s", out)
	}
}

// testssl runs testssl.sh's protocol check over STARTTLS and returns the
// finding per protocol id (TLS1, TLS1_1, TLS1_2, TLS1_3).
func testssl(t *testing.T, bin, addr string) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	js := filepath.Join(t.TempDir(), "testssl.json")
	cmd := exec.CommandContext(ctx, bin, "--starttls", "xmpp", "--xmpphost", "localhost", "-p", "--nodns", "none",
		"--color", "0", "--quiet", "--warnings", "off", "--jsonfile", js, addr)
	out, err := cmd.CombinedOutput()
	b, rerr := os.ReadFile(js)
	if rerr != nil {
		t.Fatalf("testssl.sh wrote no JSON (%v):\n%s", err, out)
	}
	var findings []struct{ ID, Finding string }
	if err := json.Unmarshal(b, &findings); err != nil {
		t.Fatalf("testssl.sh JSON: %v", err)
	}
	res := map[string]string{}
	for _, f := range findings {
		res[f.ID] = f.Finding
	}
	return res
}

// TestTestsslNoOldTLS: testssl.sh --starttls xmpp reports TLS 1.0 and 1.1
// not offered and 1.2 offered; against a server whose floor is 1.0 it does
// report them offered (positive control).
func TestTestsslNoOldTLS(t *testing.T) {
	bin := testenv.RequireTool(t, "Debian package testssl.sh, "+testenv.HostPackages, "testssl")
	srv := startServer(t)
	got := testssl(t, bin, srv.Addrs().C2S)
	for _, id := range []string{"TLS1", "TLS1_1"} {
		if !strings.HasPrefix(got[id], "not offered") {
			t.Errorf("%s: %q, want not offered", id, got[id])
		}
	}
	for _, id := range []string{"TLS1_2", "TLS1_3"} {
		if !strings.HasPrefix(got[id], "offered") {
			t.Errorf("%s: %q, want offered", id, got[id])
		}
	}
	loose := startWithPolicy(t, permissivePolicy(t))
	if ctl := testssl(t, bin, loose.Addrs().C2S); !strings.HasPrefix(ctl["TLS1_1"], "offered") {
		t.Fatalf("positive control: testssl.sh does not see TLS 1.1 on a server that offers it: %v", ctl)
	}
}
