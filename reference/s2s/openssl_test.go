package s2s

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// TestOpenSSLStartTLS drives `openssl s_client -starttls xmpp-server` at the
// s2s port: TLS 1.1 is refused at the policy's 1.2 floor, TLS 1.2 works,
// and, as the control that the TLS 1.1 client is able to connect at all
// (OpenSSL 3 refuses TLS 1.1 at its default security level, which would
// make "refused" prove nothing), the same TLS 1.1 command succeeds against a
// peer that allows TLS 1.1.
func TestOpenSSLStartTLS(t *testing.T) {
	openssl := testenv.RequireTool(t, "", "openssl")
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	startNode(t, "b.test", ln, issue(t, nil, "b.test"), WithPolicy(pol))
	lnOld := listen(t)
	startNode(t, "old.test", lnOld, issue(t, nil, "old.test"), WithMinTLSVersion(tls.VersionTLS10), withMaxTLSVersion(tls.VersionTLS11))

	for _, tc := range []struct {
		name     string
		addr     string
		host     string
		version  string
		wantOK   bool
		protocol string
	}{
		{"control: TLS 1.1 client reaches a TLS 1.1 peer", lnOld.Addr().String(), "old.test", "-tls1_1", true, "TLSv1.1"},
		{"TLS 1.1 refused", ln.Addr().String(), "b.test", "-tls1_1", false, ""},
		{"TLS 1.0 refused", ln.Addr().String(), "b.test", "-tls1", false, ""},
		{"TLS 1.2 accepted", ln.Addr().String(), "b.test", "-tls1_2", true, "TLSv1.2"},
		{"TLS 1.3 accepted", ln.Addr().String(), "b.test", "-tls1_3", true, "TLSv1.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", tc.addr,
				"-starttls", "xmpp-server", "-xmpphost", tc.host, tc.version,
				"-cipher", "DEFAULT:@SECLEVEL=0", "-brief")
			cmd.Stdin = strings.NewReader("")
			cmd.Env = append(os.Environ(), "OPENSSL_CONF=/dev/null")
			out, err := cmd.CombinedOutput()
			ok := err == nil && strings.Contains(string(out), "Protocol version: "+tc.protocol)
			if tc.wantOK && !ok {
				t.Fatalf("handshake failed: %v\n%s", err, out)
			}
			if !tc.wantOK && (err == nil || strings.Contains(string(out), "Protocol version")) {
				t.Fatalf("handshake succeeded:\n%s", out)
			}
			t.Logf("%s", out)
		})
	}
}
