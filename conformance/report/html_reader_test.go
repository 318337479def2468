package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
)

// readerSample is a run with the verdicts in catalogue order pass, pass,
// fail, waived fail, not-testable.
func readerSample() *Report {
	r := sample(Pass, Pass, Fail, NotTestable)
	r.Results[1].Claim, r.Results[1].Verdict = "mam.disabled", Fail
	r.Results[1].Waiver = &Waiver{Reason: "accepted until the upgrade", Expires: "2099-01-01"}
	r.Results[2].Params = map[string]string{"max_age": "7d"}
	r.Results[2].Reason = "an offline message older than 7d was still delivered"
	r.Target = Target{Name: "prosody", Kind: "container", Description: "Prosody 0.12 (Debian), configured as close to the JabberX policy as it allows",
		Capabilities: []string{"network"}}
	r.Finish()
	return r
}

var tableClaim = regexp.MustCompile(`<tr><td><a href="#([a-z0-9.-]+)">`)

// TestHTMLForAReader (issue 12, item 8): the summary table lists failures
// first, has a Reason column and shows each claim's parameters, and the
// page says in words what was tested.
func TestHTMLForAReader(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, readerSample()); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	var order []string
	for _, m := range tableClaim.FindAllStringSubmatch(page, -1) {
		order = append(order, m[1])
	}
	if got, want := strings.Join(order, " "), "offline.retention upload.retention mam.disabled tls.c2s-required"; got != want {
		t.Errorf("table order %q, want failures first: %q", got, want)
	}
	for _, want := range []string{
		"<th>Reason</th>", "<th>Parameters</th>",
		"an offline message older than 7d was still delivered",
		`<p class="params"><b>Parameters tested:</b> <code>max_age = 7d</code></p>`,
		"Does <b>Prosody 0.12 (Debian), configured as close to the JabberX policy as it allows, run in a container on the test machine (target prosody)</b> keep the promises",
		"fail (waived until 2099-01-01)",
		"Of 4 promises tested: <b>1 shown kept</b>, <b class=\"nok\">2 broken</b> (1 accepted by a waiver), 1 not testable on this target",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "Conformance of <b>") {
		t.Error("the page still opens with the bare target name")
	}
}

// TestHTMLForAReaderInChromium renders the same page in headless Chromium
// and checks the visible order; XMPPCHECK_SCREENSHOT=FILE keeps the
// screenshot for a person to look at.
func TestHTMLForAReaderInChromium(t *testing.T) {
	bin := testenv.RequireTool(t, "apt-get install chromium; "+testenv.HostPackages+" lists it", "chromium", "chromium-browser", "google-chrome")
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, readerSample()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(page, buf.Bytes(), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1200,1400"}
	dom, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	var order []string
	for _, m := range tableClaim.FindAllStringSubmatch(string(dom), -1) {
		order = append(order, m[1])
	}
	if len(order) == 0 || order[0] != "offline.retention" {
		t.Errorf("rendered table order %v: the failure is not first", order)
	}
	png := filepath.Join(dir, "shot.png")
	if keep := os.Getenv("XMPPCHECK_SCREENSHOT"); keep != "" {
		png = keep
	}
	if out, err := exec.CommandContext(ctx, bin, append(args, "--hide-scrollbars", "--screenshot="+png, "file://"+page)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
}
