package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

// Issue 11, item 1: a run that could not do its job exits 2 with the
// reason, never 0.
func TestLoadExitTwoWhenNothingWorked(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 4)
	small := []string{"--users", "4", "--rate", "10", "--duration", "1s", "--drain", "1s", "--progress", "never"}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unreachable", []string{"--server", "127.0.0.1:1"}, "unreachable"},
		{"nonsense address", []string{"--server", "nonsense"}, "HOST:PORT"},
		{"wrong password", []string{"--server", srv.Addr(), "--password", "not-the-password"}, "no session was established"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runChild(t, append(append([]string{"load", "chat"}, tt.args...), small...)...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, want 2 with %q\nstdout:\n%s\nstderr:\n%s", code, tt.want, out, errOut)
			}
		})
	}
	// The wrong password is named in the reason, and the banner says ERROR.
	code, out, errOut := runChild(t, append([]string{"load", "chat", "--server", srv.Addr(), "--password", "nope-nope", "--threshold", "p99<10s"}, small...)...)
	if code != 2 || !strings.Contains(errOut, "not-authorized") || !strings.Contains(out, "RESULT: ERROR") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	// Control: the same run with the right password exits 0.
	if code, out, errOut := runChild(t, append([]string{"load", "chat", "--server", srv.Addr()}, small...)...); code != 0 {
		t.Errorf("working run: exit %d\n%s\n%s", code, out, errOut)
	}
}

// Issue 11, items 2 and 3: every input is checked before anything is
// created or sent; a typo is exit 2 with the list of metrics, not a
// regression (exit 1) found after the run.
func TestLoadInputsCheckedBeforeRun(t *testing.T) {
	srv := fakexmpp.Start(t)
	dir := t.TempDir()
	base := []string{"load", "chat", "--server", srv.Addr(), "--register", "--users", "4", "--progress", "never"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--threshold", "mesage.p99<5ms"}, "its metrics: message, setup_login, send_lag"},
		{[]string{"--threshold", "login.p99<5ms"}, "not measured by this scenario"},
		{[]string{"--threshold", "p99<50"}, "no unit"},
		{[]string{"--rate", "-5"}, "rate must be positive"},
		{[]string{"--duration", "0s"}, "duration must be positive"},
		{[]string{"--mix", "chat=1"}, "--mix applies only to the mixed scenario"},
		{[]string{"--json", "/nonexistent/dir/r.json"}, "cannot write there"},
		{[]string{"--html", dir}, "is a directory"},
		{[]string{"--shard", "0/2"}, "--run-id"},
		{[]string{"--start-at", "2001-01-01T00:00:00Z"}, "not in the future"},
		{[]string{"--stages", "5s:10", "--rate", "5"}, "--stages replaces"},
		{[]string{"--find-max", "100", "--rate", "5"}, "--find-max sets the rates itself"},
		{[]string{"--stages", "0s:10"}, "duration must be positive"},
		{[]string{"--find-max", "100,50"}, "must increase"},
	} {
		code, _, errOut := runChild(t, append(append([]string{}, base...), tt.args...)...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, want 2 with %q:\n%s", tt.args, code, tt.want, errOut)
		}
		if strings.Contains(errOut, "provisioning") {
			t.Errorf("%v: accounts were provisioned before the input was refused", tt.args)
		}
	}
	if srv.CheckPassword("load0", "load-password-1") {
		t.Error("an account was created although every command line was refused")
	}
	// Control: the same command line without a bad flag registers and runs.
	if code, out, errOut := runChild(t, append(base, "--rate", "10", "--duration", "1s")...); code != 0 || !srv.CheckPassword("load0", "load-password-1") {
		t.Errorf("control run: exit %d\n%s\n%s", code, out, errOut)
	}
}

// Issue 11, item 3: results are streamed while the run goes; the reports
// are rendered from the stream and 'load report' renders it again, also
// when it was cut short.
func TestLoadResultsStreamAndReport(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 10)
	dir := t.TempDir()
	jsonPath, stream := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.results.jsonl")
	code, out, errOut := runChild(t, "load", "chat", "--server", srv.Addr(), "--users", "10", "--rate", "100", "--duration", "2s",
		"--progress", "never", "--json", jsonPath, "--threshold", "p99<10s")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	raw, err := os.ReadFile(stream)
	if err != nil {
		t.Fatalf("no results stream beside --json: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) < 4 || !strings.Contains(lines[0], stats.StreamFormat) || !strings.Contains(lines[len(lines)-1], `"tail"`) {
		t.Fatalf("stream has %d lines; head %.80s … tail %.80s", len(lines), lines[0], lines[len(lines)-1])
	}
	orig := readResult(t, jsonPath)
	if len(orig.Thresholds) != 1 || !orig.Thresholds[0].Pass || orig.Thresholds[0].Expr != "p99<10s" {
		t.Errorf("thresholds in the JSON = %+v", orig.Thresholds)
	}
	// Re-render from the stream: the same counters and histograms.
	again := filepath.Join(dir, "again.json")
	if code, out, errOut := runChild(t, "load", "report", stream, "--json", again, "--html", filepath.Join(dir, "again.html")); code != 0 {
		t.Fatalf("load report: exit %d\n%s\n%s", code, out, errOut)
	}
	re := readResult(t, again)
	if !equalMaps(orig.Counters, re.Counters) || orig.Counters[stats.Completed] != 200 {
		t.Errorf("re-rendered counters %v, original %v", re.Counters, orig.Counters)
	}
	for name, m := range orig.Metrics {
		a, _ := m.Histogram()
		b, err := re.Metrics[name].Histogram()
		if err != nil || !a.Equals(b) {
			t.Errorf("%s: re-rendered histogram differs", name)
		}
	}
	if len(re.Thresholds) != 1 {
		t.Errorf("recorded thresholds not evaluated again: %+v", re.Thresholds)
	}
	// A stream cut in the middle of a line (the run died): what was
	// written is rendered, marked incomplete, and the exit code says the
	// run did not finish.
	cut := filepath.Join(dir, "cut.jsonl")
	keep := strings.Join(lines[:len(lines)-2], "\n") + "\n" + lines[len(lines)-2][:20]
	os.WriteFile(cut, []byte(keep), 0o644)
	cutJSON := filepath.Join(dir, "cut.json")
	code, out, errOut = runChild(t, "load", "report", cut, "--json", cutJSON)
	if code != 2 || !strings.Contains(errOut, "stream ends before the run did") {
		t.Errorf("cut stream: exit %d\n%s\n%s", code, out, errOut)
	}
	if r := readResult(t, cutJSON); !r.Incomplete || r.Counters[stats.Sent] == 0 {
		t.Errorf("cut stream rendered as %+v", r.Counters)
	}
}

// shardRun runs the shards of one run (same run id and --start-at) at
// once and returns their result files.
func shardRun(t *testing.T, addr, dir, prefix, runID string, shards int, extra ...string) []string {
	t.Helper()
	startAt := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)
	var wg sync.WaitGroup
	files := make([]string, shards)
	errs := make([]string, shards)
	for i := range shards {
		files[i] = filepath.Join(dir, fmt.Sprintf("%s-%d.json", prefix, i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"load", "chat", "--server", addr, "--progress", "never", "--run-id", runID, "--start-at", startAt,
				"--shard", fmt.Sprintf("%d/%d", i, shards), "--json", files[i]}, extra...)
			if code, out, errOut := runChild(t, args...); code != 0 {
				errs[i] = fmt.Sprintf("shard %d: exit %d\n%s\n%s", i, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}
	return files
}

// Issue 11, item 4: merge refuses what is not one run and warns on skew.
func TestLoadMergeChecks(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 10)
	dir := t.TempDir()
	small := []string{"--users", "10", "--rate", "100", "--duration", "1s"}
	a := shardRun(t, srv.Addr(), dir, "a", "a1", 2, small...)
	b := shardRun(t, srv.Addr(), dir, "b", "b2", 2, small...)
	for _, tt := range []struct {
		name  string
		files []string
		want  string
	}{
		{"same file twice", []string{a[0], a[0]}, "is in both"},
		{"two unrelated runs", []string{a[0], b[1]}, "give every shard the same --run-id"},
		{"a shard missing", []string{a[1]}, "shards 0 of 2 are missing"},
	} {
		code, out, errOut := runChild(t, append([]string{"load", "merge"}, tt.files...)...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s\n%s", tt.name, code, tt.want, out, errOut)
		}
	}
	// Different settings under one run id are refused too.
	r1 := readResult(t, a[1])
	r1.Config["rate"] = 999.0
	other := filepath.Join(dir, "other.json")
	r1.WriteFile(other)
	if code, _, errOut := runChild(t, "load", "merge", a[0], other); code != 2 || !strings.Contains(errOut, "rate 100 vs 999") {
		t.Errorf("different settings: exit %d\n%s", code, errOut)
	}
	// Windows 3 s apart: merged, with a warning.
	r1 = readResult(t, a[1])
	r1.Window.Start = r1.Window.Start.Add(-3 * time.Second)
	skewed := filepath.Join(dir, "skewed.json")
	r1.WriteFile(skewed)
	if code, out, errOut := runChild(t, "load", "merge", a[0], skewed); code != 0 || !strings.Contains(errOut, "warning: the shards' windows start 3s apart") {
		t.Errorf("skewed shards: exit %d, want 0 with a warning\n%s\n%s", code, out, errOut)
	}
	// Windows that do not overlap at all: refused.
	r1 = readResult(t, a[1])
	r1.Window.Start, r1.Window.End = r1.Window.Start.Add(time.Hour), r1.Window.End.Add(time.Hour)
	later := filepath.Join(dir, "later.json")
	r1.WriteFile(later)
	if code, _, errOut := runChild(t, "load", "merge", a[0], later); code != 2 || !strings.Contains(errOut, "do not overlap") {
		t.Errorf("disjoint windows: exit %d\n%s", code, errOut)
	}
	// Control: the two shards of one run merge without a warning.
	code, _, errOut := runChild(t, "load", "merge", "--dir", dir+"/no-such")
	if code != 2 || errOut == "" {
		t.Errorf("empty --dir: exit %d, no reason given: %q", code, errOut)
	}
	code, out, errOut := runChild(t, "load", "merge", a[0], a[1])
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Errorf("one run's shards: exit %d\n%s\n%s", code, out, errOut)
	}
}

// Done-when of issue 11: a two-shard run merged equals a one-shard run of
// the same total: counts exact, rate within 2%.
func TestLoadTwoShardsEqualOneShard(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 20)
	dir := t.TempDir()
	total := []string{"--users", "20", "--rate", "200", "--duration", "2s"}
	one := shardRun(t, srv.Addr(), dir, "one", "0e", 1, total...)
	two := shardRun(t, srv.Addr(), dir, "two", "2e", 2, total...)
	merged := filepath.Join(dir, "merged.json")
	if code, out, errOut := runChild(t, append([]string{"load", "merge", "--json", merged}, two...)...); code != 0 {
		t.Fatalf("merge: exit %d\n%s\n%s", code, out, errOut)
	}
	a, b := readResult(t, one[0]), readResult(t, merged)
	for _, c := range []string{stats.Scheduled, stats.Sent, stats.Completed, stats.Expected, stats.Sessions} {
		if a.Counters[c] != b.Counters[c] {
			t.Errorf("%s: one shard %d, two shards merged %d", c, a.Counters[c], b.Counters[c])
		}
	}
	if a.Counters[stats.Completed] != 400 || a.Metrics["message"].Count != b.Metrics["message"].Count {
		t.Errorf("completed %d, message counts %d vs %d", a.Counters[stats.Completed], a.Metrics["message"].Count, b.Metrics["message"].Count)
	}
	if d := math.Abs(a.Rate()-b.Rate()) / a.Rate(); d > 0.02 {
		t.Errorf("rate: one shard %.2f/s, two shards %.2f/s (%.1f%% apart, tolerance 2%%)", a.Rate(), b.Rate(), 100*d)
	}
	t.Logf("one shard: %v rate %.2f/s; two shards merged: %v rate %.2f/s", a.Counters, a.Rate(), b.Counters, b.Rate())
}

// Issue 11, item 7: the report names the run, shows a verdict banner with
// each threshold, p95, the legend, thresholds in the JSON, chart text in
// the page's font and the partial last second.
func TestLoadReportElements(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 10)
	dir := t.TempDir()
	htmlPath, jsonPath := filepath.Join(dir, "r.html"), filepath.Join(dir, "r.json")
	code, out, errOut := runChild(t, "load", "chat", "--server", srv.Addr(), "--users", "10", "--rate", "100", "--duration", "2s",
		"--progress", "never", "--run-id", "abc123", "--html", htmlPath, "--json", jsonPath, "--threshold", "p99<10s", "--threshold", "p95<1us")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (p95<1us cannot hold)\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	h := string(b)
	for _, want := range []string{
		`<th>target</th><td>` + srv.Addr(), `<th>scenario</th><td>chat`, `<th>users</th><td>10`, `<th>rate</th><td>100 ops/s`,
		`<th>duration</th><td>2s`, `<th>run id</th><td>abc123`,
		`class="banner FAIL"`, `p99&lt;10s: actual`, `p95&lt;1us: actual`, `<th>p95</th>`,
		`<dt>foreign</dt>`, `<dt>send_lag</dt>`, `<dt>*</dt>`, `*message`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	// Chart text uses the page's font stack, nothing else.
	page := regexp.MustCompile(`body\{font-family:([^;]+);`).FindStringSubmatch(h)
	if page == nil {
		t.Fatal("no page font")
	}
	fonts := regexp.MustCompile(`font-family:([^;"]+)`).FindAllStringSubmatch(h, -1)
	for _, f := range fonts {
		if f[1] != page[1] {
			t.Errorf("chart font %q differs from the page's %q", f[1], page[1])
			break
		}
	}
	if len(fonts) < 10 {
		t.Errorf("only %d font declarations: charts missing?", len(fonts))
	}
	// The run ends mid-second: the last interval is partial and drawn so.
	res := readResult(t, jsonPath)
	last := res.Series[len(res.Series)-1]
	if last.Span <= 0 || last.Span >= 1000 {
		t.Fatalf("last interval span %d ms", last.Span)
	}
	if last.Span < 900 && (!strings.Contains(h, `id="partial"`) || !strings.Contains(h, "stroke-dasharray")) {
		t.Errorf("partial last second (%d ms) not drawn as partial", last.Span)
	}
	// Thresholds in the JSON, p95 in the metrics.
	var raw map[string]any
	jb, _ := os.ReadFile(jsonPath)
	json.Unmarshal(jb, &raw)
	ths, _ := raw["thresholds"].([]any)
	if len(ths) != 2 || ths[0].(map[string]any)["pass"] != true || ths[1].(map[string]any)["pass"] != false {
		t.Errorf("thresholds in the JSON = %v", raw["thresholds"])
	}
	if res.Metrics["message"].P95US <= 0 || !strings.Contains(out, "p95") || !strings.Contains(out, "RESULT: FAIL") {
		t.Errorf("p95 %d; text:\n%s", res.Metrics["message"].P95US, out)
	}
}

// --find-max steps the rate until a threshold breaks and reports the
// highest passing rate. A throughput ceiling as the threshold makes the
// break point known without loading anything hard: 50 and 100/s pass
// rate<150, 200/s does not, 400/s is never run.
func TestLoadFindMax(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 10)
	jsonPath := filepath.Join(t.TempDir(), "best.json")
	code, out, errOut := runChild(t, "load", "chat", "--server", srv.Addr(), "--users", "10", "--duration", "1s", "--progress", "never",
		"--find-max", "50,100,200,400", "--threshold", "rate<150", "--threshold", "lost==0", "--json", jsonPath)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "highest passing rate: 100/s (200/s broke: rate<150") {
		t.Errorf("find-max output:\n%s", out)
	}
	if strings.Contains(out, "     400/s") {
		t.Errorf("a step above the break was run:\n%s", out)
	}
	res := readResult(t, jsonPath)
	if res.Config["rate"] != 100.0 || len(res.Config["find_max"].([]any)) != 3 {
		t.Errorf("best step's result: rate %v, ladder %v", res.Config["rate"], res.Config["find_max"])
	}
	// Nothing passes: exit 1.
	code, out, _ = runChild(t, "load", "chat", "--server", srv.Addr(), "--users", "10", "--duration", "1s", "--progress", "never",
		"--find-max", "50,100", "--threshold", "rate<10")
	if code != 1 || !strings.Contains(out, "FAIL rate<10") {
		t.Errorf("nothing passing: exit %d\n%s", code, out)
	}
}

// A shard whose setup ends after --start-at sends nothing and says why
// (its schedule would no longer share the other shards' clock): exit 2.
func TestLoadStartAtMissed(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 4)
	code, out, errOut := runChild(t, "load", "chat", "--server", srv.Addr(), "--users", "4", "--rate", "10", "--duration", "1s",
		"--progress", "never", "--start-at", "+1ms") // past before the first login completes
	if code != 2 || !strings.Contains(errOut, "setup ended after --start-at") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}
