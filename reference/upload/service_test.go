package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/redact"
	"github.com/xmppcheck/xmppcheck/spec"
)

type fixture struct {
	svc    *Service
	srv    *httptest.Server
	client *http.Client
	clock  *testClock
	dir    string
	sealer *gcmSealer
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{clock: newTestClock(), dir: t.TempDir(), sealer: newTestSealer(t)}
	opts = append([]Option{WithClock(f.clock), withChunk(1 << 10)}, opts...)
	svc, err := New(f.dir, f.sealer, defaultPolicy(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.srv = httptest.NewUnstartedServer(svc.Handler())
	f.srv.TLS = TLSConfig(nil, tls.VersionTLS12)
	f.srv.Config.ErrorLog = NewHTTPServer(nil, nil, nil).ErrorLog
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	if err := svc.SetBaseURL(f.srv.URL); err != nil {
		t.Fatal(err)
	}
	f.client = f.srv.Client()
	return f
}

func (f *fixture) slot(t *testing.T, owner, name string, size int, ctype string) Slot {
	t.Helper()
	s, err := f.svc.RequestSlot(context.Background(), owner, Request{Filename: name, Size: int64(size), ContentType: ctype})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) do(t *testing.T, method, u string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestUploadDownload(t *testing.T) {
	f := newFixture(t)
	data := randBytes(5000)
	s := f.slot(t, "alice@example.org", "report.pdf", len(data), "application/pdf")
	resp, _ := f.do(t, http.MethodPut, s.PutURL, data, map[string]string{"Content-Type": "application/pdf"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	resp, got := f.do(t, http.MethodGet, s.GetURL, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET: %s, %d bytes, equal %v", resp.Status, len(got), bytes.Equal(got, data))
	}
	for k, want := range map[string]string{
		"Content-Type":            "application/pdf",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": csp,
		"Content-Disposition":     `attachment; filename=report.pdf`,
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// A range reads the right bytes (decrypting only the chunks it needs).
	resp, got = f.do(t, http.MethodGet, s.GetURL, nil, map[string]string{"Range": "bytes=1000-3999"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[1000:4000]) {
		t.Fatalf("range: %s, equal %v", resp.Status, bytes.Equal(got, data[1000:4000]))
	}
	resp, got = f.do(t, http.MethodHead, s.GetURL, nil, nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) || len(got) != 0 {
		t.Fatalf("HEAD: %s, length %d", resp.Status, resp.ContentLength)
	}
}

func TestDisposition(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ ctype, want string }{
		{"image/png", "inline"},
		{"image/jpeg", "inline"},
		{"image/svg+xml", "attachment"},
		{"text/html", "attachment"},
		{"text/plain; charset=utf-8", "attachment"},
		{"", "attachment"},
	} {
		t.Run(tc.ctype, func(t *testing.T) {
			s := f.slot(t, "alice@example.org", "x y.bin", 3, tc.ctype)
			hdr := map[string]string{}
			if tc.ctype != "" {
				hdr["Content-Type"] = tc.ctype
			}
			if resp, _ := f.do(t, http.MethodPut, s.PutURL, []byte("abc"), hdr); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %s", resp.Status)
			}
			resp, _ := f.do(t, http.MethodGet, s.GetURL, nil, nil)
			want := tc.want + `; filename="x y.bin"`
			if got := resp.Header.Get("Content-Disposition"); got != want {
				t.Errorf("Content-Disposition = %q, want %q", got, want)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != csp {
				t.Error("security headers missing")
			}
		})
	}
}

func TestPutRules(t *testing.T) {
	f := newFixture(t)
	data := []byte("hello, world")
	ct := map[string]string{"Content-Type": "text/plain"}
	cases := []struct {
		name string
		body []byte
		hdr  map[string]string
		want int
	}{
		{"too long", append(bytes.Clone(data), '!'), ct, http.StatusRequestEntityTooLarge},
		{"too short", data[:5], ct, http.StatusBadRequest},
		{"wrong type", data, map[string]string{"Content-Type": "text/html"}, http.StatusUnsupportedMediaType},
		{"no type", data, nil, http.StatusUnsupportedMediaType},
		{"type with case and parameters", data, map[string]string{"Content-Type": "Text/Plain"}, http.StatusCreated},
		{"second upload", data, ct, http.StatusConflict},
	}
	s := f.slot(t, "alice@example.org", "a.txt", len(data), "text/plain")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := f.do(t, http.MethodPut, s.PutURL, tc.body, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %s, want %d", resp.Status, tc.want)
			}
		})
	}
	// The refused attempts left the slot usable for the one upload that
	// succeeded, and that upload is what is served.
	resp, got := f.do(t, http.MethodGet, s.GetURL, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET: %s %q", resp.Status, got)
	}
}

func TestNothingElseExists(t *testing.T) {
	f := newFixture(t)
	data := []byte("secret")
	s := f.slot(t, "alice@example.org", "a.txt", len(data), "text/plain")
	if resp, _ := f.do(t, http.MethodPut, s.PutURL, data, map[string]string{"Content-Type": "text/plain"}); resp.StatusCode != http.StatusCreated {
		t.Fatal(resp.Status)
	}
	u, _ := url.Parse(s.GetURL)
	id := strings.Split(u.Path, "/")[2]
	other := base64.RawURLEncoding.EncodeToString(randBytes(32))
	notFound := []string{
		"/", "/upload", "/upload/", "/upload/" + id, "/upload/" + id + "/",
		"/upload/" + id + "/b.txt", "/upload/" + other + "/a.txt",
		"/upload/" + id + "/a.txt/", "/upload/" + id + "/a.txt?x=1",
		"/upload/../upload/" + id + "/a.txt/..", "/upload/%2e%2e/%2e%2e/etc/passwd",
		"/upload/" + id + "/..%2f..%2f" + filepath.Base(f.dir), "/upload/" + id + "%2fa.txt",
		"/" + filepath.Base(f.dir), "/upload/" + keyOf(id) + "/a.txt",
	}
	// Unknown paths and known ones alike: one status, one body.
	var body404 []byte
	for _, p := range notFound {
		resp, b := f.do(t, http.MethodGet, f.srv.URL+p, nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, resp.Status)
		}
		if body404 == nil {
			body404 = b
		} else if !bytes.Equal(b, body404) {
			t.Errorf("GET %s: body %q differs from other 404s", p, b)
		}
		if bytes.Contains(b, data) {
			t.Errorf("GET %s served the file", p)
		}
	}
	for _, m := range []string{http.MethodDelete, http.MethodPost, http.MethodPatch, "PROPFIND", "MKCOL"} {
		for _, p := range []string{u.Path, "/upload/" + other + "/a.txt", "/"} {
			resp, _ := f.do(t, m, f.srv.URL+p, nil, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %s, want 405", m, p, resp.Status)
			}
		}
	}
	// Positive control: the same client and URL do serve the file.
	if resp, b := f.do(t, http.MethodGet, s.GetURL, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
		t.Fatalf("control GET: %s", resp.Status)
	}
}

func TestSlotIDEntropy(t *testing.T) {
	pol := defaultPolicy(t)
	c, _ := pol.Claim(spec.UploadUnguessableURL)
	minBits := c.Params.Count("min_entropy_bits")
	f := newFixture(t)
	seen := map[string]bool{}
	for i := range 200 {
		s := f.slot(t, "alice@example.org", "f", 1, "")
		u, _ := url.Parse(s.GetURL)
		parts := strings.Split(u.Path, "/")
		if len(parts) != 4 {
			t.Fatalf("slot URL path %q", u.Path)
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		if len(raw)*8 < minBits {
			t.Fatalf("slot %d: id has %d bits, policy wants %d", i, len(raw)*8, minBits)
		}
		if seen[parts[2]] {
			t.Fatalf("slot id repeated after %d slots", i)
		}
		seen[parts[2]] = true
	}
	if f.svc.IDBits() < minBits {
		t.Fatalf("IDBits %d < %d", f.svc.IDBits(), minBits)
	}
}

func TestSlotRefusals(t *testing.T) {
	f := newFixture(t, WithMaxFileSize(1000), WithQuota(2500))
	ctx := context.Background()
	cases := []struct {
		name string
		req  Request
		want error
	}{
		{"too large", Request{Filename: "a", Size: 1001}, ErrTooLarge},
		{"fits", Request{Filename: "a", Size: 1000}, nil},
		{"fits again", Request{Filename: "a", Size: 1000}, nil},
		{"quota", Request{Filename: "a", Size: 501}, ErrQuota},
		{"fills quota", Request{Filename: "a", Size: 500}, nil},
		{"slash in name", Request{Filename: "../a", Size: 1}, ErrBadRequest},
		{"dot-dot", Request{Filename: "..", Size: 1}, ErrBadRequest},
		{"control character", Request{Filename: "a\nb", Size: 1}, ErrBadRequest},
		{"empty name", Request{Filename: "", Size: 1}, ErrBadRequest},
		{"bad type", Request{Filename: "a", Size: 1, ContentType: "not a type"}, ErrBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.RequestSlot(ctx, "alice@example.org", tc.req)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Another user has their own quota.
	if _, err := f.svc.RequestSlot(ctx, "bob@example.org", Request{Filename: "a", Size: 1000}); err != nil {
		t.Fatal(err)
	}
	// The quota frees up when unused slots expire.
	f.clock.Advance(DefaultSlotTTL)
	if _, err := f.svc.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RequestSlot(ctx, "alice@example.org", Request{Filename: "a", Size: 1000}); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestRetention(t *testing.T) {
	f := newFixture(t)
	maxAge := f.svc.Retention()
	if maxAge != 14*24*time.Hour {
		t.Fatalf("retention %v, want the policy's 14d", maxAge)
	}
	data := []byte("kept for two weeks")
	s := f.slot(t, "alice@example.org", "a.txt", len(data), "text/plain")
	if resp, _ := f.do(t, http.MethodPut, s.PutURL, data, map[string]string{"Content-Type": "text/plain"}); resp.StatusCode != http.StatusCreated {
		t.Fatal(resp.Status)
	}
	ctx := context.Background()
	f.clock.Advance(maxAge - time.Second)
	if n, _ := f.svc.Purge(ctx); n != 0 {
		t.Fatalf("purged %d files before max_age", n)
	}
	if resp, _ := f.do(t, http.MethodGet, s.GetURL, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before max_age: %s", resp.Status)
	}
	if countFiles(t, f.dir, ".data") != 1 {
		t.Fatal("positive control: the stored file is not in the data directory")
	}
	f.clock.Advance(time.Second)
	if n, _ := f.svc.Purge(ctx); n != 1 {
		t.Fatalf("purged %d files at max_age, want 1", n)
	}
	if resp, _ := f.do(t, http.MethodGet, s.GetURL, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after max_age: %s", resp.Status)
	}
	if n := countFiles(t, f.dir, ""); n != 0 {
		t.Fatalf("%d files left in the data directory", n)
	}
}

func TestExpiredWithoutPurge(t *testing.T) {
	f := newFixture(t)
	data := []byte("x")
	s := f.slot(t, "alice@example.org", "a", 1, "")
	if resp, _ := f.do(t, http.MethodPut, s.PutURL, data, nil); resp.StatusCode != http.StatusCreated {
		t.Fatal(resp.Status)
	}
	f.clock.Advance(f.svc.Retention())
	// No purge ran: the GET itself refuses and removes the file.
	if resp, _ := f.do(t, http.MethodGet, s.GetURL, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after max_age: %s", resp.Status)
	}
	if n := countFiles(t, f.dir, ""); n != 0 {
		t.Fatalf("%d files left", n)
	}
}

func TestUnusedSlotExpires(t *testing.T) {
	f := newFixture(t)
	s := f.slot(t, "alice@example.org", "a", 1, "")
	f.clock.Advance(DefaultSlotTTL)
	if resp, _ := f.do(t, http.MethodPut, s.PutURL, []byte("x"), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("PUT to an expired slot: %s", resp.Status)
	}
}

func TestRemoveOwner(t *testing.T) {
	f := newFixture(t)
	put := func(owner string) Slot {
		s := f.slot(t, owner, "a", 3, "")
		if resp, _ := f.do(t, http.MethodPut, s.PutURL, []byte("abc"), nil); resp.StatusCode != http.StatusCreated {
			t.Fatal(resp.Status)
		}
		return s
	}
	a1, a2, b := put("alice@example.org"), put("alice@example.org"), put("bob@example.org")
	pending := f.slot(t, "alice@example.org", "p", 3, "")
	n, err := f.svc.RemoveOwner(context.Background(), "alice@example.org")
	if err != nil || n != 3 {
		t.Fatalf("RemoveOwner = %d, %v; want 3", n, err)
	}
	for _, s := range []Slot{a1, a2} {
		if resp, _ := f.do(t, http.MethodGet, s.GetURL, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("alice's file after removal: %s", resp.Status)
		}
	}
	if resp, _ := f.do(t, http.MethodPut, pending.PutURL, []byte("abc"), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("alice's open slot after removal: %s", resp.Status)
	}
	if resp, _ := f.do(t, http.MethodGet, b.GetURL, nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's file: %s", resp.Status)
	}
	if got := countFiles(t, f.dir, ".meta"); got != 1 {
		t.Errorf("%d metadata files left, want bob's 1", got)
	}
}

func TestSealedAtRest(t *testing.T) {
	f := newFixture(t)
	marker := "PLAINTEXT-MARKER-" + base64.RawURLEncoding.EncodeToString(randBytes(8))
	owner := "owner-" + strings.ToLower(base64.RawURLEncoding.EncodeToString(randBytes(6))) + "@example.org"
	fname := "name-" + marker + ".txt"
	data := []byte(strings.Repeat(marker+"\n", 100))
	s := f.slot(t, owner, fname, len(data), "text/plain")
	if resp, _ := f.do(t, http.MethodPut, s.PutURL, data, map[string]string{"Content-Type": "text/plain"}); resp.StatusCode != http.StatusCreated {
		t.Fatal(resp.Status)
	}
	u, _ := url.Parse(s.GetURL)
	id := strings.Split(u.Path, "/")[2]
	needles := []string{marker, owner, id}

	// Positive control: the scanner finds the needles where they are plain.
	ctl := t.TempDir()
	os.WriteFile(filepath.Join(ctl, "x"), []byte("..."+marker+"..."+owner+"..."+id), 0o600)
	if hits := scanDir(t, ctl, needles); len(hits) != len(needles) {
		t.Fatalf("positive control found %v", hits)
	}
	if hits := scanDir(t, f.dir, needles); len(hits) != 0 {
		t.Fatalf("plaintext in the data directory: %v", hits)
	}
	// And the stored file is really there: a fresh service over the same
	// directory and key serves it.
	svc2, err := New(f.dir, f.sealer, defaultPolicy(t), WithClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewTLSServer(svc2.Handler())
	defer srv2.Close()
	resp, err := srv2.Client().Get(srv2.URL + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("reloaded service: %s, equal %v", resp.Status, bytes.Equal(got, data))
	}
	// Under another key nothing opens, and nothing is deleted either.
	svc3, err := New(f.dir, newTestSealer(t), defaultPolicy(t), WithClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	if st := svc3.Stats(); st.Stored != 0 {
		t.Fatalf("another key opened %d files", st.Stored)
	}
	if countFiles(t, f.dir, ".data") != 1 {
		t.Fatal("loading under a wrong key deleted data")
	}
}

func scanDir(t *testing.T, dir string, needles []string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) || strings.Contains(p, n) {
				hits = append(hits, n+" in "+filepath.Base(p))
			}
		}
		return nil
	})
	return hits
}

func countFiles(t *testing.T, dir, suffix string) int {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		if strings.HasSuffix(de.Name(), suffix) {
			n++
		}
	}
	return n
}

func TestTLSFloor(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name    string
		max     uint16
		wantErr bool
	}{
		{"TLS 1.0", tls.VersionTLS10, true},
		{"TLS 1.1", tls.VersionTLS11, true},
		{"TLS 1.2", tls.VersionTLS12, false},
		{"TLS 1.3", tls.VersionTLS13, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", f.srv.Listener.Addr().String(), &tls.Config{
				InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tc.max,
			})
			if err == nil {
				conn.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("handshake error %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestRedactingWriter(t *testing.T) {
	var buf bytes.Buffer
	l := slogText(&buf)
	w := redact.Writer(l, slog.LevelWarn, "upload: http: ").Writer()
	addrs := []string{"127.0.0.1:51234", "[::1]:443", "203.0.113.9", "2001:db8::1"}
	for _, a := range addrs {
		w.Write([]byte("http: TLS handshake error from " + a + ": EOF\n"))
	}
	out := buf.String()
	if !strings.Contains(out, "TLS handshake error") {
		t.Fatalf("positive control: message lost: %q", out)
	}
	for _, a := range addrs {
		if strings.Contains(out, a) {
			t.Errorf("address %s logged: %q", a, out)
		}
	}
}
