package spec_test

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/spec"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestLintGolden loads every policy file under testdata/lint and compares
// the diagnostics with the .golden file beside it.
func TestLintGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/lint/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no lint test files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := spec.Load(f)
			var ds spec.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("Load(%s) = %v, want Diagnostics", f, err)
			}
			got := ds.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./spec -run TestLintGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestThreeErrors is the acceptance check: a copy of jabberx.yaml
// with a misspelled claim id, a parameter of the wrong type and a quote not
// in the source yields exactly those three problems, each with position.
func TestThreeErrors(t *testing.T) {
	_, err := spec.Load("testdata/lint/three-errors.yaml")
	var ds spec.Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("got %v, want Diagnostics", err)
	}
	want := []struct {
		line, col int
		substr    string
	}{
		{47, 29, `"max_failures": "five" is not a count`},
		{103, 9, `unknown claim id "offline.retension"`},
		{129, 12, `quote not found verbatim`},
	}
	if len(ds) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%v", len(ds), len(want), ds)
	}
	for i, w := range want {
		d := ds[i]
		if d.Line != w.line || d.Column != w.col || !strings.Contains(d.Message, w.substr) {
			t.Errorf("diagnostic %d = %v, want %d:%d %q", i, d, w.line, w.col, w.substr)
		}
	}
	if !strings.Contains(ds[1].Hint, `"offline.retention"`) {
		t.Errorf("unknown id hint %q does not suggest the nearest id", ds[1].Hint)
	}
}

func TestJabberXPolicy(t *testing.T) {
	p, err := spec.Load("policies/jabberx.yaml")
	if err != nil {
		t.Fatalf("jabberx.yaml: %v", err)
	}
	if len(p.Claims) < 16 {
		t.Errorf("%d claims, want at least 16", len(p.Claims))
	}
	want := map[spec.ClaimID]func(spec.Params) bool{
		spec.TLSC2SMinVersion: func(ps spec.Params) bool { return spec.TLSVersionName(ps.TLSVersion("min")) == "1.2" },
		spec.OfflineRetention: func(ps spec.Params) bool { return spec.FormatDuration(ps.Duration("max_age")) == "7d" },
		spec.UploadRetention:  func(ps spec.Params) bool { return spec.FormatDuration(ps.Duration("max_age")) == "14d" },
		spec.AuthSCRAMStorage: func(ps spec.Params) bool {
			return ps.Hash("hash") == spec.HashSHA1 && ps.Count("min_iterations") >= 4096
		},
		spec.RegistrationMinimalData: func(ps spec.Params) bool { return len(ps.Fields("required")) == 2 },
		spec.UploadUnguessableURL:    func(ps spec.Params) bool { return ps.Count("min_entropy_bits") == 128 },
	}
	for id, ok := range want {
		c, found := p.Claim(id)
		if !found {
			t.Errorf("jabberx.yaml lacks %s", id)
			continue
		}
		if !ok(c.Params) {
			t.Errorf("%s has unexpected params %v", id, c.Params)
		}
	}
	// The Terms/§2.2 contradiction is recorded and §2.2 is tested.
	if len(p.Conflicts) == 0 || p.Conflicts[0].Tested != "2.2" {
		t.Errorf("archive conflict not recorded as testing §2.2: %+v", p.Conflicts)
	}
	// Values the document does not give are explained.
	for _, id := range []spec.ClaimID{spec.AuthBruteForce, spec.RegistrationRateLimited} {
		c, _ := p.Claim(id)
		if !strings.Contains(c.Notes, "document gives no") {
			t.Errorf("%s: notes do not say the document gives no number: %q", id, c.Notes)
		}
	}
}

// The embedded copy must be the same file, loadable without a checkout.
func TestEmbeddedDefault(t *testing.T) {
	p, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	disk, err := spec.Load("policies/jabberx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Claims) != len(disk.Claims) || p.SourceText != disk.SourceText {
		t.Error("embedded policy differs from spec/policies/jabberx.yaml")
	}
}

func TestCoverageJabberX(t *testing.T) {
	p, err := spec.Load("policies/jabberx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cov := p.Coverage()
	if len(cov) < 80 {
		t.Fatalf("only %d sentences found; the splitter is broken", len(cov))
	}
	for _, s := range cov {
		if !s.Accounted() {
			t.Errorf("line %d (§%s) unaccounted: %s", s.Line, s.Section, s.Text)
		}
	}
	// Positive control: dropping a statement leaves its sentence unaccounted.
	p.Statements = p.Statements[1:]
	missing := 0
	for _, s := range p.Coverage() {
		if !s.Accounted() {
			missing++
			if !strings.Contains(s.Text, "debug logs") {
				t.Errorf("unexpected unaccounted sentence: %s", s.Text)
			}
		}
	}
	if missing != 1 {
		t.Errorf("dropping one statement left %d sentences unaccounted, want 1", missing)
	}
}

func TestLoadSourceFromURL(t *testing.T) {
	// Covered through WithSourceText: a policy whose source is a URL can be
	// checked against text supplied by the caller (no network).
	dir := t.TempDir()
	f := filepath.Join(dir, "p.yaml")
	os.WriteFile(f, []byte(`policy: P
source: https://example.invalid/policy.txt
claims:
  - id: mam.disabled
    section: "1"
    quote: "We keep no archive."
`), 0o644)
	p, err := spec.Load(f, spec.WithSourceText("1. Archive\nWe keep no archive. Really.\n"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !p.Has(spec.MAMDisabled) {
		t.Error("claim lost")
	}
	_, err = spec.Load(f, spec.WithSourceText("1. Archive\nWe keep an archive.\n"))
	if err == nil {
		t.Error("quote absent from the supplied text was accepted")
	}

	// A real fetch, from a loopback HTTP server.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/policy.txt" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "1. Archive\nWe keep no archive. Really.\n")
	}))
	defer srv.Close()
	os.WriteFile(f, []byte("policy: P\nsource: "+srv.URL+"/policy.txt\nclaims:\n  - id: mam.disabled\n    section: \"1\"\n    quote: \"We keep no archive.\"\n"), 0o644)
	if _, err := spec.Load(f); err != nil {
		t.Errorf("Load with URL source: %v", err)
	}
	os.WriteFile(f, []byte("policy: P\nsource: "+srv.URL+"/gone.txt\nclaims: []\n"), 0o644)
	var ds spec.Diagnostics
	if _, err := spec.Load(f); !errors.As(err, &ds) || !strings.Contains(ds.Error(), "404") {
		t.Errorf("Load with a 404 source = %v, want a diagnostic naming the HTTP status", err)
	}
}
