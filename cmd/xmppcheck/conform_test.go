package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
)

// TestMain lets a test run xmppcheck as a child process (the conformance
// suite runs once per process, as Ginkgo requires).
func TestMain(m *testing.M) {
	if os.Getenv("XMPPCHECK_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runChild runs xmppcheck with args in a child process.
func runChild(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "XMPPCHECK_TEST_MAIN=1", "NO_COLOR=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

func TestConformRemoteExitCodes(t *testing.T) {
	good := fakexmpp.Start(t)
	good.AddUser("probe", "hunter2-probe-pw")
	weak := fakexmpp.Start(t, fakexmpp.WithMinTLSVersion(tls.VersionTLS10))
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accept and never answer
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"compliant", []string{"--remote", good.Addr(), "--remote-tls", good.TLSAddr(), "--domain", "localhost",
			"--account", "probe@localhost:hunter2-probe-pw", "--claims", "tls.c2s-required,tls.c2s-min-version", "--json", filepath.Join(dir, "good.json")},
			0, []string{"tls.c2s-required", "pass", "2 pass, 0 fail"}, nil},
		{"TLS 1.0 accepted", []string{"--remote", weak.Addr(), "--domain", "localhost", "--claims", "tls.c2s-min-version", "--junit", filepath.Join(dir, "weak.xml")},
			1, []string{"fail", "accepted below the floor TLS 1.2"}, nil},
		{"strict: evidence claims not testable on a remote", []string{"--remote", good.Addr(), "--domain", "localhost", "--claims", "privacy.no-client-ip", "--strict"},
			1, []string{"not-testable (strict)", "logs and data directory cannot be read"}, nil},
		{"lenient: not testable passes the run", []string{"--remote", good.Addr(), "--domain", "localhost", "--claims", "privacy.no-client-ip"},
			0, []string{"1 not-testable"}, nil},
		{"silent server is an error", []string{"--remote", silent.Addr().String(), "--domain", "localhost", "--claims", "tls.*", "--io-timeout", "300ms", "--timeout", "5s"},
			2, []string{"error", "no response"}, nil},
		{"JSON on standard output", []string{"--remote", weak.Addr(), "--domain", "localhost", "--claims", "tls.c2s-min-version", "--json", "-"},
			1, []string{`"schema": "xmppcheck.report/v1"`}, []string{"accepted below the floor"}},
		{"unknown claim", []string{"--claims", "tls.c2s-requird"}, 2, nil, []string{`did you mean "tls.c2s-required"`}},
		{"remote without domain", []string{"--remote", good.Addr()}, 2, nil, []string{"--remote needs --domain"}},
		{"negative start timeout", []string{"--start-timeout", "-1m"}, 2, nil, []string{"--start-timeout not negative"}},
		{"two targets", []string{"--remote", good.Addr(), "--domain", "d", "--target", "prosody"}, 2, nil, []string{"only one of"}},
		{"bad account", []string{"--remote", good.Addr(), "--domain", "localhost", "--account", "nopassword"}, 2, nil, []string{"want JID:PASSWORD"}},
		{"unknown fixture target", []string{"--target", "no-such-server", "--fixtures", "../../fixtures/targets"}, 2, nil, []string{"conform: --target no-such-server", "known: ", "prosody"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runChild(t, append([]string{"conform"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stdout+stderr, "hunter2-probe-pw") {
				t.Error("the password appears in the output")
			}
		})
	}

	// The JSON report re-renders in every format, without the password.
	js := filepath.Join(dir, "good.json")
	raw, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("hunter2-probe-pw")) {
		t.Fatal("the JSON report holds the password")
	}
	var doc struct {
		Schema  string `json:"schema"`
		Results []struct {
			Verdict, Transcript string
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Schema != "xmppcheck.report/v1" || len(doc.Results) != 2 || doc.Results[0].Transcript == "" {
		t.Fatalf("report: %v %+v", err, doc)
	}
	html := filepath.Join(dir, "r.html")
	md := filepath.Join(dir, "r.md")
	code, stdout, stderr := runChild(t, "report", "--from", js, "--html", html, "--markdown", md, "--junit", filepath.Join(dir, "r.xml"))
	if code != 0 {
		t.Fatalf("report: exit %d: %s %s", code, stdout, stderr)
	}
	for _, f := range []string{html, md, filepath.Join(dir, "r.xml")} {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 || bytes.Contains(b, []byte("hunter2-probe-pw")) {
			t.Errorf("%s: %v (len %d)", f, err, len(b))
		}
	}
	code, stdout, _ = runChild(t, "report", "--from", js)
	if code != 0 || !strings.Contains(stdout, "2 pass") {
		t.Errorf("console re-render: exit %d:\n%s", code, stdout)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"nope"}`), 0o644)
	if code, _, stderr := runChild(t, "report", "--from", bad); code != 2 || !strings.Contains(stderr, "not an xmppcheck.report/v1") {
		t.Errorf("bad report: exit %d %s", code, stderr)
	}
}

func TestConformList(t *testing.T) {
	code, stdout, stderr := runChild(t, "conform", "--list", "--claims", "XEP-0077")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 { // registration.minimal-data, registration.rate-limited, account.self-deletion, account.address-reuse
		t.Fatalf("got %d specs:\n%s", len(lines), stdout)
	}
	for _, l := range lines {
		if !strings.Contains(l, "XEP-0077") {
			t.Errorf("%q lacks the label", l)
		}
	}
}
