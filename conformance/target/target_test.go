package target

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
	"github.com/xmppcheck/xmppcheck/spec"
)

// validFile is a target file that internal/target accepts, with every
// capability; parsing and the generic checks are tested there.
const validFile = `name: x
image: xmppcheck-test:none
domain: localhost
ports: { c2s: 5222 }
wait: { port: c2s }
accounts: { ibr: true }
evidence: { logs: [stdout], data: [/var/lib/x], store_format: prosody-dat }
clock: { advance: ["true"] }
`

func writeTarget(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "target.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadFile: what the suite adds to internal/target's loader — the
// store formats it can parse, reported with every other problem — and the
// container target built from a file.
func TestLoadFile(t *testing.T) {
	f, err := LoadFile(writeTarget(t, validFile))
	if err != nil {
		t.Fatal(err)
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
	// Each channel comes from its own field of the target file.
	for _, tc := range []struct {
		cp   spec.Capability
		drop func(*File)
	}{
		{spec.CapLogs, func(f *File) { f.Evidence.Logs = nil }},
		{spec.CapData, func(f *File) { f.Evidence.Data = nil }},
		{spec.CapClock, func(f *File) { f.Clock = nil }},
		{spec.CapPurge, func(f *File) { f.Clock = nil }},
	} {
		g := *f
		g.Evidence.Decrypted = nil
		tc.drop(&g)
		if ok, _ := NewContainer(&g).Has(tc.cp); ok {
			t.Errorf("%s declared without its field in the target file", tc.cp)
		}
	}
	if _, err := c.Logs(context.Background()); err == nil {
		t.Error("logs of a container not started")
	}

	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown store format", strings.Replace(validFile, "prosody-dat", "mysql", 1), []string{"mysql", "not one of"}},
		{"reported with the other problems", strings.Replace(strings.Replace(validFile, "prosody-dat", "mysql", 1), "domain: localhost\n", "", 1),
			[]string{"domain is required", "mysql"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFile(writeTarget(t, tt.body))
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
	for cp, want := range map[spec.Capability]bool{spec.CapNetwork: true, spec.CapAccounts: true, spec.CapEvidence: false, spec.CapLogs: false, spec.CapData: false, spec.CapClock: false, spec.CapPurge: false} {
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

// TestFixtureTargetFiles: every target file the fixtures ship names a
// store format the suite parses (internal/target checks the rest).
func TestFixtureTargetFiles(t *testing.T) {
	files, _ := filepath.Glob("../../fixtures/targets/*/target.yaml")
	if len(files) == 0 {
		testenv.Missing(t, "this checkout has no fixture target files (fixtures/targets/*/target.yaml)")
	}
	for _, f := range files {
		if _, err := LoadFile(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}
