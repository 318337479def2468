package target

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/spec"
)

const validFile = `name: prosody
description: Prosody 0.12
build:
  context: .
  dockerfile: Dockerfile
  args: { CONFIG: prosody.cfg.lua }
domain: localhost
ports: { c2s: 5222, c2s_tls: 5223, s2s: 5269, http: 5281 }
wait: { log: "Activated service 'c2s'", timeout: 60s }
accounts:
  create: ["prosodyctl", "register", "{user}", "{domain}", "{password}"]
  delete: ["prosodyctl", "deluser", "{user}@{domain}"]
evidence:
  logs: [stdout, /var/log/prosody/prosody.log]
  data: [/var/lib/prosody]
  store_format: prosody-dat
clock:
  advance: ["sh", "-c", "echo +{total_seconds}s > /etc/faketime.rc"]
purge: [["prosodyctl", "mod_offline_purge"]]
expected: expected.yaml
`

func writeTarget(t *testing.T, body string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	p := filepath.Join(dir, "target.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	f, err := LoadFile(writeTarget(t, validFile, "Dockerfile", "expected.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Ports.C2STLS != 5223 || time.Duration(f.Wait.Timeout) != time.Minute || f.Evidence.StoreFormat != "prosody-dat" || len(f.Purge) != 1 {
		t.Fatalf("%+v", f)
	}
	c := NewContainer(f)
	if _, ok := c.(PlainDataer); ok {
		t.Error("a container target without evidence.decrypted offers a decrypted view")
	}
	f.Evidence.Decrypted = [][]string{{"dump"}}
	if _, ok := NewContainer(f).(PlainDataer); !ok {
		t.Error("a container target with evidence.decrypted offers no decrypted view")
	}
	for _, cp := range spec.Capabilities() {
		if ok, why := c.Has(cp); !ok {
			t.Errorf("capability %s: %s", cp, why)
		}
	}
	if _, err := c.Logs(context.Background()); err == nil {
		t.Error("logs of a container not started")
	}

	// Parsing and the generic checks are internal/target's (tested
	// there); the suite adds the store formats it can parse, reported with
	// every other problem.
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown store format", strings.Replace(validFile, "prosody-dat", "mysql", 1), []string{"mysql", "not one of"}},
		{"several problems", "name: x\nimage: a\nbuild: {context: .}\nports: {c2s: 0}\nwait: {port: http}\nevidence: {store_format: mysql}\nclock: {}\n",
			[]string{"domain is required", "exactly one of image and build", "ports.c2s is required", "wait.port", "accounts needs", "mysql", "clock.advance"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFile(writeTarget(t, tt.body, "Dockerfile", "expected.yaml"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestRemote(t *testing.T) {
	a, err := ParseAccount("probe@example.org:pa:ss", "example.org")
	if err != nil || a.User != "probe" || a.Password != "pa:ss" {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := ParseAccount("probe@other.org:x", "example.org"); err == nil {
		t.Error("foreign domain accepted")
	}
	if _, err := ParseAccount(":hunter2pw", "example.org"); err == nil || strings.Contains(err.Error(), "hunter2pw") {
		t.Errorf("err=%v", err)
	}
	r := NewRemote("127.0.0.1:5222", "example.org", WithAccount(a))
	for cp, want := range map[spec.Capability]bool{spec.CapNetwork: true, spec.CapAccounts: true, spec.CapEvidence: false, spec.CapClock: false} {
		if ok, _ := r.Has(cp); ok != want {
			t.Errorf("%s: %v", cp, ok)
		}
	}
	ctx := context.Background()
	got, err := r.NewAccount(ctx, "x")
	if err != nil || got != a {
		t.Fatal(got, err)
	}
	if _, err := r.NewAccount(ctx, "x"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("second account: %v", err)
	}
	r.DeleteAccount(ctx, got)
	if _, err := r.NewAccount(ctx, "x"); err != nil {
		t.Fatalf("released account not handed out again: %v", err)
	}
	if _, err := r.Data(ctx); !errors.Is(err, ErrUnsupported) {
		t.Error(err)
	}
	if !r.LocalAddrs() || NewRemote("xmpp.example.org:5222", "example.org").LocalAddrs() {
		t.Error("LocalAddrs")
	}
}

// TestFixtureTargetFiles: every target file the fixtures ship loads.
func TestFixtureTargetFiles(t *testing.T) {
	files, _ := filepath.Glob("../../fixtures/targets/*/target.yaml")
	if len(files) == 0 {
		t.Skip("no fixture target files in this checkout")
	}
	for _, f := range files {
		if _, err := LoadFile(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}
