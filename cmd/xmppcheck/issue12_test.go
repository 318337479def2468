package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
)

// runIn runs xmppcheck in-process (commands that never start the Ginkgo
// suite).
func runIn(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestDoctor (issue 12, item 3): one line per check, ok or problem with
// its fix; a wrong password is named as such; accounts come from
// $XMPPCHECK_ACCOUNTS or --accounts-file, never only the command line
// (item 2).
func TestDoctor(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("probe", "hunter2-probe-pw")
	file := filepath.Join(t.TempDir(), "accounts.txt")
	os.WriteFile(file, []byte("# test accounts\nprobe@localhost:hunter2-probe-pw\n"), 0o600)

	t.Setenv(accountsEnv, "probe@localhost:hunter2-wrong")
	code, out, _ := runIn(t, "doctor", "--remote", s.Addr(), "--domain", "localhost")
	if code != exitFailed || !strings.Contains(out, "problem  login probe@localhost") || !strings.Contains(out, "login as probe failed: not-authorized") || !strings.Contains(out, "fix: ") {
		t.Errorf("wrong password: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "ok       reach "+s.Addr()) || !strings.Contains(out, "ok       tls") {
		t.Errorf("reachability and TLS lines missing:\n%s", out)
	}
	t.Setenv(accountsEnv, "")
	code, out, _ = runIn(t, "doctor", "--remote", s.Addr(), "--domain", "localhost", "--accounts-file", file, "--ibr")
	if code != exitOK || !strings.Contains(out, "ok       login probe@localhost") || !strings.Contains(out, "in-band registration") {
		t.Errorf("good account from --accounts-file: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Error("a password in doctor's output")
	}
}

// TestConformPreflight (issue 12, item 3): wrong credentials end a remote
// run before any claim, with the reason.
func TestConformPreflight(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("probe", "hunter2-probe-pw")
	code, stdout, stderr := runChild(t, "conform", "--remote", s.Addr(), "--domain", "localhost",
		"--account", "probe@localhost:hunter2-wrong", "--claims", "tls.*")
	if code != exitUsage || !strings.Contains(stderr, "login as probe failed: not-authorized") || strings.Contains(stdout, "tls.c2s-required") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestTargetLintCommand (issue 12, item 4).
func TestTargetLintCommand(t *testing.T) {
	p := filepath.Join(t.TempDir(), "target.yaml")
	os.WriteFile(p, []byte("name: x\nimgae: i\ndomain: d\nports: { c2s: 5222 }\nwait: { port: c2s }\naccounts: { create: prosodyctl }\n"), 0o644)
	code, out, _ := runIn(t, "target", "lint", p)
	for _, w := range []string{p + `:2:1: unknown key "imgae"`, `did you mean "image"?`, p + ":6:21: accounts.create: want a list"} {
		if !strings.Contains(out, w) {
			t.Errorf("lacks %q:\n%s", w, out)
		}
	}
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if code, out, _ := runIn(t, "target", "lint", "--fixtures", "../../fixtures/targets", "prosody"); code != exitOK {
		t.Errorf("the prosody fixture: exit %d\n%s", code, out)
	}
}

// TestTargetOutsideCheckout (issue 12, item 5): --target NAME works from a
// directory outside any checkout, from the targets built into the binary.
func TestTargetOutsideCheckout(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	p, err := targetPath("conform", "prosody", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Contains(b, []byte("name:")) {
		t.Errorf("%s: %v", p, err)
	}
	code, out, _ := runIn(t, "target", "lint", "prosody")
	if code != exitOK {
		t.Errorf("target lint prosody outside a checkout: exit %d\n%s", code, out)
	}
}

// TestNoPull (issue 12, item 5): an image: not present locally is refused
// without --pull, before anything starts.
func TestNoPull(t *testing.T) {
	old := imageInspect
	t.Cleanup(func() { imageInspect = old })
	var asked string
	imageInspect = func(_ context.Context, image string) (bool, error) { asked = image; return false, nil }
	p := filepath.Join(t.TempDir(), "target.yaml")
	os.WriteFile(p, []byte("name: x\nimage: example/never-here:1\ndomain: localhost\nports: { c2s: 5222 }\nwait: { port: c2s }\naccounts: { ibr: true }\n"), 0o644)
	code, _, stderr := runIn(t, "conform", "--target-file", p)
	if code != exitUsage || asked != "example/never-here:1" || !strings.Contains(stderr, "never pulls") {
		t.Errorf("exit %d, asked %q\n%s", code, asked, stderr)
	}
}

// TestVersion (issue 12, item 8): a version command with the commit, and
// -v free for --verbose.
func TestVersion(t *testing.T) {
	code, out, _ := runIn(t, "version")
	if code != exitOK || !strings.Contains(out, "xmppcheck ") || !strings.Contains(out, "commit ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code, _, stderr := runIn(t, "-v"); code != exitUsage {
		t.Errorf("-v at the root: exit %d (%s), want a usage error, not --version", code, stderr)
	}
}

// TestSmallItems (issue 12, item 8): a failed policy lint exits 1 (a check
// failed), counts agree with their nouns, README shows --policy, and serve's default files in a checkout are ignored by git.
func TestSmallItems(t *testing.T) {
	code, _, stderr := runIn(t, "policy", "lint", "../../spec/testdata/lint/three-errors.yaml")
	if code != exitFailed {
		t.Errorf("policy lint with problems: exit %d, want %d\n%s", code, exitFailed, stderr)
	}
	for n, want := range map[int]string{0: "0 conflicts", 1: "1 conflict", 2: "2 conflicts"} {
		if got := plural(n, "conflict"); got != want {
			t.Errorf("plural(%d) = %q", n, got)
		}
	}
	ign, err := os.ReadFile("../../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/" + defaultDataDir + "/", "/" + defaultKeyFile} {
		if !strings.Contains(string(ign), p+"\n") {
			t.Errorf(".gitignore lacks %s (xmppcheck serve's default in a checkout)", p)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "conform --policy ") {
		t.Error("README never shows conform --policy")
	}
}

// TestConformProgress (issue 12, item 6): one line per phase and per
// claim on standard error, without -v.
func TestConformProgress(t *testing.T) {
	s := fakexmpp.Start(t)
	s.AddUser("probe", "hunter2-probe-pw")
	t.Setenv(accountsEnv, "probe@localhost:hunter2-probe-pw")
	code, stdout, stderr := runChild(t, "conform", "--remote", s.Addr(), "--domain", "localhost", "--claims", "tls.c2s-required,tls.c2s-min-version")
	for _, w := range []string{"xmppcheck: testing 2 claim(s) of JabberX Privacy Policy (the live XMPP service of localhost",
		"xmppcheck: claim 1 of 2: tls.c2s-required pass\n", "xmppcheck: claim 2 of 2: tls.c2s-min-version pass\n"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if code != exitOK || strings.Contains(stdout, "claim 1 of") {
		t.Errorf("exit %d; stdout:\n%s", code, stdout)
	}
}

// TestDoctorTarget (issue 12, item 3): doctor lints the target file and
// asks for a container engine.
func TestDoctorTarget(t *testing.T) {
	p := filepath.Join(t.TempDir(), "target.yaml")
	os.WriteFile(p, []byte("name: x\nimgae: i\n"), 0o644)
	code, out, _ := runIn(t, "doctor", "--target-file", p)
	for _, w := range []string{"problem  target file", p + `:2:1: unknown key "imgae"`, "fix: xmppcheck target lint", " container engine "} {
		if !strings.Contains(out, w) {
			t.Errorf("lacks %q:\n%s", w, out)
		}
	}
	if code != exitFailed {
		t.Errorf("exit %d", code)
	}
}
