package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
)

func sample(verdicts ...Verdict) *Report {
	r := &Report{
		Tool:    Tool{Name: "xmppcheck", Version: "test"},
		Policy:  Policy{Name: "JabberX Privacy Policy", File: "embedded:jabberx.yaml", Updated: "2022-09-12"},
		Target:  Target{Name: "embedded", Kind: "embedded", Domain: "localhost", Capabilities: []string{"network"}, Lacks: map[string]string{"clock": "no <clock> here"}},
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: Duration(1500 * time.Millisecond),
	}
	for i, v := range verdicts {
		r.Results = append(r.Results, Result{
			Claim: []string{"tls.c2s-required", "mam.disabled", "offline.retention", "upload.retention"}[i%4], Title: "T <b>", Family: "tls",
			Labels: []string{"tls"}, Params: map[string]string{"min": "1.2"},
			Quote:  Quote{Section: "4", Text: `Only TLS 1.2 | "or greater" <script>alert(1)</script>`},
			Passes: "no authentication without TLS", Verdict: v, Reason: "because\nit <did>",
			Evidence:   []Evidence{{What: "STARTTLS at 1.0", Observed: "refused", OK: v == Pass, Hits: []Hit{{File: "log", Line: 3, Form: "dotted", Context: "from 127.0.0.5"}}}},
			Transcript: "C: <auth mechanism='PLAIN'>[redacted]</auth>\n",
			Duration:   Duration(20 * time.Millisecond),
		})
	}
	r.Finish()
	return r
}

func TestFinishExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		verdicts []Verdict
		strict   bool
		want     int
	}{
		{"all pass", []Verdict{Pass, Pass}, false, ExitPass},
		{"not-testable lenient", []Verdict{Pass, NotTestable}, false, ExitPass},
		{"not-testable strict", []Verdict{Pass, NotTestable}, true, ExitFailed},
		{"a fail", []Verdict{Pass, Fail, NotTestable}, false, ExitFailed},
		{"an error", []Verdict{Pass, Fail, Error}, false, ExitError},
		{"empty", nil, false, ExitPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample(tt.verdicts...)
			r.Strict = tt.strict
			r.Finish()
			if r.Summary.ExitCode != tt.want {
				t.Fatalf("exit %d, want %d (%+v)", r.Summary.ExitCode, tt.want, r.Summary)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sample(Pass, Fail, NotTestable, Error)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"schema": "xmppcheck.report/v1"`, `"verdict": "not-testable"`, `"duration_ms": 1500`, `"claim": "tls.c2s-required"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	back, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	WriteJSON(&again, back)
	if again.String() != buf.String() {
		t.Errorf("round trip differs:\n%s\n---\n%s", buf.String(), again.String())
	}
	for _, bad := range []string{`{"schema":"other"}`, `{"schema":"xmppcheck.report/v1","results":[{"verdict":"maybe"}]}`} {
		if _, err := Read(strings.NewReader(bad)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: err=%v", bad, err)
		}
	}
}

func TestJUnit(t *testing.T) {
	for _, strict := range []bool{false, true} {
		r := sample(Pass, Fail, NotTestable, Error)
		r.Strict = strict
		r.Finish()
		var buf bytes.Buffer
		if err := WriteJUnit(&buf, r); err != nil {
			t.Fatal(err)
		}
		var doc junitSuites
		if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("invalid XML: %v", err)
		}
		wantFail, wantSkip := 1, 1
		if strict {
			wantFail, wantSkip = 2, 0
		}
		if doc.Tests != 4 || doc.Failures != wantFail || doc.Errors != 1 || doc.Skipped != wantSkip {
			t.Errorf("strict=%v: %+v", strict, doc)
		}
	}
}

func TestHTMLSelfContainedAndEscaped(t *testing.T) {
	r := sample(Pass, Fail, NotTestable, Error)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if strings.Contains(html, "<script>") {
		t.Error("unescaped script from the quote")
	}
	// Self-contained: no external resources of any kind.
	ext := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:|//)|@import|url\(`)
	if m := ext.FindString(html); m != "" {
		t.Errorf("external resource: %s", m)
	}
	for _, want := range []string{"Only TLS 1.2", "badge fail", "badge not-testable", "STARTTLS at 1.0", "[redacted]", `id="mam.disabled"`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func TestConsoleAndMarkdown(t *testing.T) {
	r := sample(Pass, Fail)
	var plain, color, md bytes.Buffer
	WriteConsole(&plain, r)
	WriteConsole(&color, r, WithColor(true))
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), "\x1b[31m") {
		t.Error("colour only when asked")
	}
	if !strings.Contains(plain.String(), "1 pass, 1 fail") {
		t.Errorf("summary missing:\n%s", plain.String())
	}
	WriteMarkdown(&md, r)
	if !strings.Contains(md.String(), `Only TLS 1.2 \| "or greater" &lt;script&gt;`) {
		t.Errorf("markdown table cell not escaped:\n%s", md.String())
	}
}

// TestHTMLRendersInChromium opens the report in headless Chromium (from
// Debian's packages), offline, and checks the rendered DOM and that a
// screenshot has content. It skips without Chromium unless CI is set.
func TestHTMLRendersInChromium(t *testing.T) {
	bin := testenv.RequireTool(t, "apt-get install chromium; "+testenv.HostPackages+" lists it", "chromium", "chromium-browser", "google-chrome")
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sample(Pass, Fail, NotTestable, Error)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(page, buf.Bytes(), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1200,1600"}
	dom, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	for _, want := range []string{`class="badge fail"`, `id="mam.disabled"`, "Only TLS 1.2"} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	png := filepath.Join(dir, "shot.png")
	if out, err := exec.CommandContext(ctx, bin, append(args, "--hide-scrollbars", "--screenshot="+png, "file://"+page)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	st, err := os.Stat(png)
	if err != nil || st.Size() < 20_000 { // a blank page compresses to a few KB
		t.Fatalf("screenshot: %v (size %d)", err, st.Size())
	}
}
