package interop_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
)

// TestOpenSSLOnReferenceS2SPort: `openssl s_client -starttls xmpp-server`
// against the s2s port of a full reference server (the listener
// `xmppcheck serve --s2s` opens): TLS 1.1 is refused, TLS 1.2 and 1.3
// succeed with the same client options (so the refusal is the server's).
// That this TLS 1.1 client can connect at all is shown against a TLS 1.1
// peer in package s2s (TestOpenSSLStartTLS).
func TestOpenSSLOnReferenceS2SPort(t *testing.T) {
	openssl := testenv.RequireTool(t, "", "openssl")
	srv := startReference(t, "reference.example", "127.0.0.1:0")
	for _, tc := range []struct {
		version, protocol string
		ok                bool
	}{
		{"-tls1_1", "", false},
		{"-tls1_2", "TLSv1.2", true},
		{"-tls1_3", "TLSv1.3", true},
	} {
		t.Run(tc.version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", srv.Addrs().S2S, "-starttls", "xmpp-server",
				"-xmpphost", srv.Domain(), tc.version, "-cipher", "DEFAULT:@SECLEVEL=0", "-brief")
			cmd.Stdin = strings.NewReader("")
			cmd.Env = append(os.Environ(), "OPENSSL_CONF=/dev/null")
			out, err := cmd.CombinedOutput()
			got := err == nil && strings.Contains(string(out), "Protocol version: "+tc.protocol)
			if got != tc.ok || (!tc.ok && strings.Contains(string(out), "Protocol version")) {
				t.Fatalf("openssl %s: success %v, want %v\n%s", tc.version, got, tc.ok, out)
			}
		})
	}
}
