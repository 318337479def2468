package target

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
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
	p := writeTarget(t, validFile, "Dockerfile", "expected.yaml")
	f, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ports.C2STLS != 5223 || time.Duration(f.Wait.Timeout) != time.Minute || f.Evidence.StoreFormat != "prosody-dat" ||
		len(f.Purge) != 1 || f.Dir != filepath.Dir(p) || f.Port("http") != 5281 || f.Port("nope") != 0 {
		t.Fatalf("%+v", f)
	}
	got := Expand(f.Accounts.Create, map[string]string{"user": "u1", "domain": "localhost", "password": "p w"})
	if strings.Join(got, "|") != "prosodyctl|register|u1|localhost|p w" {
		t.Errorf("Expand: %q", got)
	}
	if d := f.StartTimeout(); d != DefaultStartTimeout {
		t.Errorf("StartTimeout without start.timeout: %s, want the default %s", d, DefaultStartTimeout)
	}
	g, err := LoadFile(writeTarget(t, validFile+"start: { timeout: 45m }\n", "Dockerfile", "expected.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if d := g.StartTimeout(); d != 45*time.Minute {
		t.Errorf("StartTimeout with start.timeout 45m: %s", d)
	}
	if s := Seconds(7*24*time.Hour + 500*time.Millisecond); s != "604800" {
		t.Errorf("Seconds: %s", s)
	}
	if tag := ImageTag("My Server/1"); tag != "xmppcheck-target-my-server-1:latest" {
		t.Errorf("ImageTag: %s", tag)
	}

	tests := []struct {
		name, body string
		files      []string
		check      func(*File) []error
		want       []string
	}{
		{name: "unknown key", body: validFile + "colour: red\n", want: []string{"field colour not found"}},
		{name: "no dockerfile", body: validFile, want: []string{"build:"}},
		{name: "missing parts", body: "name: x\nimage: a\nimage2: b\n", want: []string{"image2"}},
		{name: "several problems", body: "name: x\nimage: a\nbuild: {context: .}\nports: {c2s: 0, http: 70000}\nwait: {port: http}\nclock: {}\n",
			want: []string{"domain is required", "exactly one of image and build", "ports.c2s is required", "ports.http: 70000",
				"accounts needs", "clock.advance"}},
		{name: "wait port names nothing", body: strings.Replace(validFile, `log: "Activated service 'c2s'"`, "port: s2s_tls", 1),
			files: []string{"Dockerfile", "expected.yaml"}, want: []string{`wait.port "s2s_tls"`}},
		{name: "bad duration", body: strings.Replace(validFile, "60s", "soon", 1), want: []string{"not a duration"}},
		{name: "readiness wait longer than the whole start", body: validFile + "start: { timeout: 30s }\n",
			files: []string{"Dockerfile", "expected.yaml"}, want: []string{"wait.timeout (1m0s) is longer than start.timeout (30s)"}},
		{name: "negative start timeout", body: validFile + "start: { timeout: -1m }\n",
			files: []string{"Dockerfile", "expected.yaml"}, want: []string{"start.timeout: -1m0s is negative"}},
		{name: "stdin without create", body: "name: x\nimage: a\ndomain: d\nports: {c2s: 1}\nwait: {port: c2s}\naccounts: {ibr: true, stdin: \"{password}\"}\nevidence: {decrypted: [[]]}\n",
			want: []string{"accounts.stdin needs accounts.create", "evidence.decrypted[0] is an empty command"}},
		{name: "caller's check joins the others", body: "name: x\nimage: a\nports: {c2s: 1}\nwait: {port: c2s}\naccounts: {ibr: true}\n",
			check: func(*File) []error { return []error{errors.New("store format says no")} },
			want:  []string{"domain is required", "store format says no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []LoadOption
			if tt.check != nil {
				opts = append(opts, WithCheck(tt.check))
			}
			_, err := LoadFile(writeTarget(t, tt.body, tt.files...), opts...)
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

// TestFixtureTargetFiles: every target file the fixtures ship loads.
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
