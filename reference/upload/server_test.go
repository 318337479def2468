package upload_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
	"github.com/xmppcheck/xmppcheck/internal/testenv"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/reference/referencetest"
	"github.com/xmppcheck/xmppcheck/reference/upload"
	"github.com/xmppcheck/xmppcheck/spec"
)

// server is a reference server on loopback with the upload service.
type server struct {
	*referencetest.Server
	client *http.Client // trusts the server's certificate
	cert   string       // its path
}

func startServer(t *testing.T, opts ...reference.Option) *server {
	t.Helper()
	srv := referencetest.Start(t, append([]reference.Option{reference.WithC2STLSAddr(""), reference.WithHTTPAddr("127.0.0.1:0")}, opts...)...)
	certPath := filepath.Join(srv.DataDir(), reference.CertFile)
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &server{Server: srv, client: cl, cert: certPath}
}

func (s *server) do(t *testing.T, method, url string, body []byte, ctype string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// TestServerUpload runs XEP-0363 end to end through the reference server:
// discovery, slot, PUT, GET, errors, retention on the test clock, and
// removal with the account.
func TestServerUpload(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	alice := srv.Connect(t, "alice")
	service := "upload." + srv.Domain()

	// Discovery (XEP-0363 §3): an item of the domain, store/file identity,
	// the feature, and max-file-size.
	items, err := alice.DiscoItems(ctx, srv.Domain(), "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range items {
		found = found || it.JID == service
	}
	if !found {
		t.Fatalf("disco#items of %s lacks %s: %+v", srv.Domain(), service, items)
	}
	info, err := alice.DiscoInfo(ctx, service, "")
	if err != nil {
		t.Fatal(err)
	}
	if !info.HasFeature(ns.Upload) || !strings.Contains(info.Raw, "category='store'") && !strings.Contains(info.Raw, `category="store"`) {
		t.Fatalf("disco#info of %s: %s", service, info.Raw)
	}
	if !regexp.MustCompile(`max-file-size['"]>\s*<value>104857600</value>`).MatchString(info.Raw) {
		t.Fatalf("no max-file-size of %d in %s", upload.DefaultMaxFileSize, info.Raw)
	}

	data := make([]byte, 300<<10)
	rand.Read(data)
	slot, err := alice.RequestUploadSlot(ctx, service, "photo.jpg", int64(len(data)), "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := srv.do(t, http.MethodPut, slot.PutURL, data, "image/jpeg"); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	code, got, hdr := srv.do(t, http.MethodGet, slot.GetURL, nil, "")
	if code != http.StatusOK || !bytes.Equal(got, data) || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET: %d, equal %v, headers %v", code, bytes.Equal(got, data), hdr)
	}

	// The same over HTTP/2 (ALPN h2).
	h2 := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: srv.client.Transport.(*http.Transport).TLSClientConfig.Clone(), ForceAttemptHTTP2: true}}
	resp, err := h2.Get(slot.GetURL)
	if err != nil {
		t.Fatal(err)
	}
	got2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !bytes.Equal(got2, data) {
		t.Fatalf("HTTP/2 GET: %s %s, equal %v", resp.Proto, resp.Status, bytes.Equal(got2, data))
	}

	// XEP-0363 §4.1: too large, with the limit.
	_, err = alice.RequestUploadSlot(ctx, service, "big.bin", upload.DefaultMaxFileSize+1, "")
	var se *xmppclient.StanzaError
	if !errors.As(err, &se) || se.Condition != stanza.NotAcceptable || !strings.Contains(se.Raw, "<file-too-large") || !strings.Contains(se.Raw, "<max-file-size>104857600</max-file-size>") {
		t.Fatalf("too large: %v", err)
	}
	// Remote or unknown senders get no slot; a request to the domain is not
	// the service.
	if _, err := alice.RequestUploadSlot(ctx, srv.Domain(), "x", 1, ""); !errors.As(err, &se) {
		t.Fatalf("slot from the domain itself: %v", err)
	}

	// Retention on the server's clock: there at max_age − 1 s, gone at max_age.
	pol := srv.Policy()
	c, _ := pol.Claim(spec.UploadRetention)
	maxAge := c.Params.Duration("max_age")
	srv.TestClock().Advance(maxAge - time.Second)
	if code, _, _ := srv.do(t, http.MethodGet, slot.GetURL, nil, ""); code != http.StatusOK {
		t.Fatalf("GET before max_age: %d", code)
	}
	if n := countData(t, srv.DataDir()); n != 1 {
		t.Fatalf("positive control: %d stored files before max_age, want 1", n)
	}
	// The purge job runs every upload.PurgeInterval on the server clock
	// (inside Advance on the test clock): by max_age plus one interval the
	// file is gone from disk, not only refused.
	srv.TestClock().Advance(time.Second + upload.PurgeInterval(maxAge))
	if n := countData(t, srv.DataDir()); n != 0 {
		t.Fatalf("%d stored files after max_age", n)
	}
	if code, _, _ := srv.do(t, http.MethodGet, slot.GetURL, nil, ""); code != http.StatusNotFound {
		t.Fatalf("GET after max_age: %d", code)
	}
}

func TestServerUploadRemovedWithAccount(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	service := "upload." + srv.Domain()
	bob := srv.Connect(t, "bob")
	bs, err := bob.RequestUploadSlot(ctx, service, "b.txt", 3, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	srv.do(t, http.MethodPut, bs.PutURL, []byte("bob"), "text/plain")
	carol := srv.Connect(t, "carol")
	cs, err := carol.RequestUploadSlot(ctx, service, "c.txt", 5, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	srv.do(t, http.MethodPut, cs.PutURL, []byte("carol"), "text/plain")
	if n := countData(t, srv.DataDir()); n != 2 {
		t.Fatalf("positive control: %d stored files, want 2", n)
	}
	// XEP-0077 removal by the user.
	if _, err := carol.IQ(ctx, "set", "", "<query xmlns='jabber:iq:register'><remove/></query>"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := srv.do(t, http.MethodGet, cs.GetURL, nil, ""); code != http.StatusNotFound {
		t.Fatalf("carol's file after account removal: %d", code)
	}
	if code, _, _ := srv.do(t, http.MethodGet, bs.GetURL, nil, ""); code != http.StatusOK {
		t.Fatalf("bob's file: %d", code)
	}
	// Admin removal.
	if err := srv.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if n := countData(t, srv.DataDir()); n != 0 {
		t.Fatalf("%d stored files after both accounts were removed", n)
	}
}

func TestServerUploadLimits(t *testing.T) {
	srv := startServer(t, reference.WithUploadLimits(1000, 1500))
	ctx := context.Background()
	alice := srv.Connect(t, "alice")
	service := "upload." + srv.Domain()
	info, err := alice.DiscoInfo(ctx, service, "")
	if err != nil || !strings.Contains(info.Raw, "<value>1000</value>") {
		t.Fatalf("disco#info does not advertise the configured limit: %v %s", err, info.Raw)
	}
	var se *xmppclient.StanzaError
	if _, err := alice.RequestUploadSlot(ctx, service, "a", 1001, ""); !errors.As(err, &se) || !strings.Contains(se.Raw, "<max-file-size>1000</max-file-size>") {
		t.Fatalf("1001 bytes: %v", err)
	}
	if _, err := alice.RequestUploadSlot(ctx, service, "a", 1000, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RequestUploadSlot(ctx, service, "b", 501, ""); !errors.As(err, &se) || se.Condition != stanza.ResourceConstraint || se.Type != "wait" {
		t.Fatalf("over quota: %v", err)
	}
}

func countData(t *testing.T, dataDir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dataDir, "upload", "*.data"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestGoSendxmppHTTPUpload: go-sendxmpp --http-upload sends a file; the
// recipient (a go-sendxmpp --listen) receives its URL, and curl fetches the
// same bytes from it.
func TestGoSendxmppHTTPUpload(t *testing.T) {
	bin := testenv.RequireTool(t, "", "go-sendxmpp")
	curl := testenv.RequireTool(t, "", "curl")
	srv := startServer(t)
	for _, u := range []string{"alice", "bob"} {
		if err := srv.CreateUser(context.Background(), u, u+"-pw"); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.txt")
	content := bytes.Repeat([]byte("xmppcheck upload through go-sendxmpp\n"), 2000)
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// go-sendxmpp's HTTP client verifies the upload server's certificate
	// against the system roots: SSL_CERT_FILE names the server's own.
	env := append(os.Environ(), "HOME="+dir, "SSL_CERT_FILE="+srv.cert)
	common := []string{"-j", srv.Addrs().C2S, "-n", "--suppress-root-warning", "--fast-off", "--timeout", "20"}
	listenOut := &syncbuf.Buffer{}
	listener := exec.CommandContext(ctx, bin, append([]string{"-u", "bob@" + srv.Domain(), "-p", "bob-pw", "--listen"}, common...)...)
	listener.Env, listener.Stdout, listener.Stderr = env, listenOut, listenOut
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { listener.Process.Kill(); listener.Wait() }()
	// The listener's presence is not observable from here without the
	// server's internals: send until it prints the URL (bounded).
	urlRe := regexp.MustCompile(`https://[^\s<>"']+/upload/[A-Za-z0-9_-]+/report\.txt`)
	var url string
	for attempt := 0; attempt < 10 && url == ""; attempt++ {
		// Flags first: go-sendxmpp stops reading flags at the recipient.
		args := append(append([]string{"-u", "alice@" + srv.Domain(), "-p", "alice-pw", "--http-upload", file}, common...), "bob@"+srv.Domain())
		send := exec.CommandContext(ctx, bin, args...)
		send.Env = env
		if out, err := send.CombinedOutput(); err != nil {
			t.Fatalf("go-sendxmpp --http-upload: %v\n%s", err, out)
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if m := urlRe.FindString(listenOut.String()); m != "" {
				url = m
				break
			}
		}
	}
	if url == "" {
		t.Fatalf("the recipient never printed an upload URL:\n%s", listenOut.String())
	}
	out, err := exec.CommandContext(ctx, curl, "--silent", "--show-error", "--fail", "--cacert", srv.cert, url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	if !bytes.Equal(out, content) {
		t.Fatalf("curl fetched %d bytes, not the %d sent", len(out), len(content))
	}
}
