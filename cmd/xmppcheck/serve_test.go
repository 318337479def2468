package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
)

// execCLI runs a command line with ctx and stdin, returning its error.
func execCLI(ctx context.Context, stdin string, out *syncbuf.Buffer, args ...string) error {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(out)
	root.SetErr(out)
	return root.ExecuteContext(ctx)
}

// TestServeAndAdmin: a zero-config first start creates the key outside the
// data directory and a self-signed certificate inside it, prints its
// listeners; admin then manages accounts and the test clock over the
// control socket while the server runs, and opens the store itself once it
// stopped.
func TestServeAndAdmin(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- execCLI(ctx, "", out, "serve", "--c2s", "127.0.0.1:0", "--c2s-tls", "127.0.0.1:0", "--test-clock")
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "admin socket"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", out.String())
		}
	}
	for _, want := range []string{"xmppcheck-at-rest.key (created)", "tls/cert.pem (self-signed, created)", "c2s (STARTTLS):", "TEST CLOCK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve output lacks %q:\n%s", want, out.String())
		}
	}
	if m := regexp.MustCompile(`c2s \(STARTTLS\):\s+127\.0\.0\.1:\d+`).FindString(out.String()); m == "" {
		t.Errorf("no bound c2s address printed:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "xmppcheck-data", "tls", "cert.pem")); err != nil {
		t.Error(err)
	}
	admin := func(stdin string, args ...string) (string, error) {
		o := &syncbuf.Buffer{}
		err := execCLI(context.Background(), stdin, o, append([]string{"admin"}, args...)...)
		return o.String(), err
	}
	if o, err := admin("s3cret\n", "user", "add", "alice@localhost"); err != nil || !strings.Contains(o, "created alice@localhost") {
		t.Fatalf("user add: %v %s", err, o)
	}
	if _, err := admin("", "user", "add", "bob"); err == nil {
		t.Fatal("user add without a password succeeded")
	}
	if o, err := admin("", "user", "list"); err != nil || strings.TrimSpace(o) != "alice" {
		t.Fatalf("user list: %v %q", err, o)
	}
	if o, err := admin("", "clock", "advance", "7d"); err != nil || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT`).MatchString(o) {
		t.Fatalf("clock advance: %v %q", err, o)
	}
	if o, err := admin("", "dump", "--scram"); err != nil || !strings.Contains(o, "scram alice@localhost SHA-1 4096 ") {
		t.Fatalf("dump --scram: %v %q", err, o)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	// Server stopped: admin opens the store itself; clock commands refuse.
	if o, err := admin("", "user", "delete", "alice"); err != nil || !strings.Contains(o, "deleted alice") {
		t.Fatalf("offline user delete: %v %s", err, o)
	}
	if o, err := admin("", "user", "list"); err != nil || strings.TrimSpace(o) != "" {
		t.Fatalf("offline list: %v %q", err, o)
	}
	if _, err := admin("", "clock", "now"); err == nil || !strings.Contains(err.Error(), "no server runs") {
		t.Fatalf("clock without a server: %v", err)
	}
}

func TestServeRefusesKeyInsideData(t *testing.T) {
	dir := t.TempDir()
	out := &syncbuf.Buffer{}
	err := execCLI(context.Background(), "", out, "serve", "--data", dir, "--key-file", filepath.Join(dir, "k"), "--c2s", "127.0.0.1:0", "--c2s-tls", "")
	if err == nil || !strings.Contains(err.Error(), "must not be inside the data directory") {
		t.Fatalf("got %v", err)
	}
}

func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	os.WriteFile(cfg, []byte("domain: example.test\ndata: d\nkey_file: k\nlisten:\n  c2s: 127.0.0.1:0\n  c2s_tls: \"\"\nlimits:\n  auth_timeout: 5s\n  max_stanza_size: 1024\nlog:\n  format: json\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- execCLI(ctx, "", out, "serve", "--config", cfg) }()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "admin socket"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", out.String())
		}
	}
	cancel()
	<-done
	s := out.String()
	for _, want := range []string{"for example.test", filepath.Join(dir, "d"), `"msg":"reference server started"`} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "direct TLS") {
		t.Errorf("c2s_tls \"\" did not disable the listener:\n%s", s)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen:\n  c2ss: x\n"), 0o600)
	if err := execCLI(context.Background(), "", &syncbuf.Buffer{}, "serve", "--config", bad); err == nil || !strings.Contains(err.Error(), "c2ss") {
		t.Fatalf("unknown key: %v", err)
	}
}
