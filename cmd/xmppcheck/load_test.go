package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

func addLoadUsers(t *testing.T, add func(user, pw string) error, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := add(fmt.Sprintf("load%d", i), "load-password-1"); err != nil {
			t.Fatal(err)
		}
	}
}

func readResult(t *testing.T, path string) *stats.Result {
	t.Helper()
	r, err := stats.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLoadChatOutputsAndThresholds(t *testing.T) {
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 20)
	dir := t.TempDir()
	jsonPath, csvPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.html")
	base := []string{"load", "chat", "--server", srv.Addr(), "--users", "20", "--rate", "200", "--duration", "1s", "--progress", "never"}

	code, out, errOut := runChild(t, append(base, "--json", jsonPath, "--csv", csvPath, "--html", htmlPath,
		"--threshold", "p99<10s", "--threshold", "errors<0.1%", "--threshold", "lost==0")...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"scenario chat", "*message", "p99", "threshold p99<10s", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	res := readResult(t, jsonPath)
	if res.Counters[stats.Sent] != 200 || res.Counters[stats.Completed] != 200 || res.Metrics["message"].Count != 200 {
		t.Errorf("counters %v, message count %d", res.Counters, res.Metrics["message"].Count)
	}
	// CSV: a header and one row per second, columns consistent.
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) < 2 || rows[0][0] != "unix_second" || !strings.Contains(strings.Join(rows[0], ","), "message_p99_us") {
		t.Fatalf("csv = %v, %v", rows, err)
	}
	// HTML: self-contained with charts.
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	h := string(html)
	if strings.Count(h, "<svg") < 3 || !strings.Contains(h, "p99&lt;10s") {
		t.Errorf("html lacks charts or thresholds")
	}
	for _, bad := range []string{"<script src", "<link ", "src=\"http", "href=\"http", "@import"} {
		if strings.Contains(h, bad) {
			t.Errorf("html is not self-contained: contains %q", bad)
		}
	}

	// A threshold that cannot hold sets exit code 1.
	code, out, _ = runChild(t, append(base, "--threshold", "p99<1us")...)
	if code != 1 || !strings.Contains(out, "FAIL") {
		t.Errorf("impossible threshold: exit %d, want 1\n%s", code, out)
	}
	// Usage errors exit 2.
	for _, args := range [][]string{
		append(base, "--threshold", "p99<<fast"),
		{"load", "dance", "--server", srv.Addr()},
		append(base, "--shard", "2/2"),
		append(base, "--source-addrs", "10.0.0.1"),
	} {
		if code, _, errOut := runChild(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}

func TestLoadRegisterLogin(t *testing.T) {
	srv := fakexmpp.Start(t)
	code, out, errOut := runChild(t, "load", "login", "--server", srv.Addr(), "--register", "--users", "5", "--rate", "20",
		"--duration", "1s", "--progress", "never", "--threshold", "login.p99<10s", "--threshold", "errors==0")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !srv.CheckPassword("load4", "load-password-1") {
		t.Error("--register did not create the accounts")
	}
	for _, m := range []string{"connect", "tls", "auth", "bind", "login"} {
		if !strings.Contains(out, m) {
			t.Errorf("summary lacks %s", m)
		}
	}
}

// TestLoadShardMerge runs N shard processes at once against one server
// and checks that the merge is exactly the sum of the parts.
func TestLoadShardMerge(t *testing.T) {
	const shards = 3
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, 30)
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]string, shards)
	startAt := time.Now().Add(4 * time.Second).UTC().Format(time.RFC3339Nano)
	for i := 0; i < shards; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errOut := runChild(t, "load", "chat", "--server", srv.Addr(), "--users", "30", "--rate", "300",
				"--duration", "1s", "--progress", "never", "--shard", fmt.Sprintf("%d/%d", i, shards), "--run-id", "5eed", "--start-at", startAt,
				"--json", filepath.Join(dir, fmt.Sprintf("s%d.json", i)))
			if code != 0 {
				errs[i] = fmt.Sprintf("shard %d exit %d\n%s\n%s", i, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}
	var parts []*stats.Result
	args := []string{"load", "merge"}
	for i := 0; i < shards; i++ {
		p := filepath.Join(dir, fmt.Sprintf("s%d.json", i))
		parts = append(parts, readResult(t, p))
		args = append(args, p)
	}
	mergedPath := filepath.Join(dir, "merged.json")
	code, out, errOut := runChild(t, append(args, "--json", mergedPath, "--threshold", "lost==0")...)
	if code != 0 {
		t.Fatalf("merge exit %d\n%s\n%s", code, out, errOut)
	}
	merged := readResult(t, mergedPath)

	// Counters and errors: the sum of the parts.
	sum := map[string]int64{}
	errSum := map[string]int64{}
	users := 0
	for _, p := range parts {
		for k, v := range p.Counters {
			sum[k] += v
		}
		for k, v := range p.Errors {
			errSum[k] += v
		}
		users += p.Shards[0].Users
	}
	if !equalMaps(sum, merged.Counters) || !equalMaps(errSum, merged.Errors) {
		t.Errorf("merged counters %v errors %v, sum of parts %v %v", merged.Counters, merged.Errors, sum, errSum)
	}
	if users != 30 || len(merged.Shards) != shards {
		t.Errorf("shards cover %d users, merged lists %d shards", users, len(merged.Shards))
	}
	if merged.Counters[stats.Completed] != 300 {
		t.Errorf("completed %d, want 300 (the whole run's messages)", merged.Counters[stats.Completed])
	}
	// Histograms: bucket-for-bucket the merge of the parts' histograms, and
	// the percentiles recomputed from it.
	for name, m := range merged.Metrics {
		want := stats.NewHistogram()
		var count int64
		for _, p := range parts {
			if pm := p.Metrics[name]; pm != nil {
				h, err := pm.Histogram()
				if err != nil {
					t.Fatal(err)
				}
				want.Merge(h)
				count += pm.Count
			}
		}
		got, err := m.Histogram()
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equals(want) || m.Count != count {
			t.Errorf("%s: merged histogram differs from the merge of the parts (count %d vs %d)", name, m.Count, count)
		}
		if m.P99US != want.ValueAtQuantile(99) || m.MaxUS != want.Max() {
			t.Errorf("%s: percentiles not recomputed from the merged histogram", name)
		}
	}
	// Series: per-counter totals are preserved.
	var seriesCompleted int64
	for _, iv := range merged.Series {
		seriesCompleted += iv.Counters[stats.Completed]
	}
	if seriesCompleted != merged.Counters[stats.Completed] {
		t.Errorf("merged series sum %d != completed %d", seriesCompleted, merged.Counters[stats.Completed])
	}
	// The result file round-trips through JSON unchanged.
	b, _ := json.Marshal(merged)
	if len(b) == 0 {
		t.Fatal("empty JSON")
	}
}

func equalMaps(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// TestLoadEmbedded runs the acceptance command's shape, scaled down, against
// the embedded reference server.
func TestLoadEmbedded(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "r.json")
	code, out, errOut := runChild(t, "load", "chat", "--users", "20", "--rate", "200", "--duration", "2s",
		"--progress", "never", "--json", jsonPath, "--threshold", "lost==0", "--threshold", "errors==0")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "embedded reference server on 127.0.0.1:") {
		t.Errorf("no embedded server announced: %s", errOut)
	}
	res := readResult(t, jsonPath)
	if res.Counters[stats.Completed] != 400 || res.Metrics["message"] == nil || res.Metrics["message"].P99US <= 0 {
		t.Errorf("counters %v", res.Counters)
	}
	if !res.Shards[0].CPUIncludesSUT {
		t.Error("an embedded run must say its CPU figures include the server")
	}
}

// TestLoadTarget runs a short bounded chat load against the reference
// fixture in a container (--target): the image is built, the accounts are
// created by exec in the container, every message is delivered, and the
// container is gone afterwards.
func TestLoadTarget(t *testing.T) {
	fixtures, err := filepath.Abs("../../fixtures/targets")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "no-such-server"}, "known: "},
		{[]string{"--target", "reference", "--server", "127.0.0.1:5222"}, "only one of --server, --target and --target-file"},
		{[]string{"--target-file", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
	} {
		code, _, errOut := runChild(t, append([]string{"load", "chat", "--fixtures", fixtures, "--progress", "never"}, tt.args...)...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, want 2 with %q:\n%s", tt.args, code, tt.want, errOut)
		}
	}

	dockerenv.Require(t)
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	code, out, errOut := runChild(t, "load", "chat", "--target", "reference", "--fixtures", fixtures,
		"--users", "20", "--rate", "100", "--duration", "2s", "--max-messages", "200", "--progress", "never",
		"--json", jsonPath, "--threshold", "lost==0", "--threshold", "errors==0")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	res := readResult(t, jsonPath)
	if res.Counters[stats.Sent] != 200 || res.Counters[stats.Completed] != 200 || res.Counters[stats.Sessions] != 20 ||
		res.Metrics["message"] == nil || res.Metrics["message"].Count != 200 {
		t.Errorf("counters %v", res.Counters)
	}
	if res.Config["target"] != "reference" || res.Shards[0].CPUIncludesSUT {
		t.Errorf("config %v, cpu includes server %v", res.Config, res.Shards[0].CPUIncludesSUT)
	}
	m := regexp.MustCompile(`target reference: container ([0-9a-f]{12,}), c2s on 127\.0\.0\.1:\d+`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no container announced:\n%s", errOut)
	}
	if !strings.Contains(errOut, "container stopped and removed") {
		t.Errorf("no cleanup reported:\n%s", errOut)
	}
	if err := exec.Command("docker", "inspect", m[1]).Run(); err == nil {
		t.Errorf("container %s still exists after the run", m[1])
	}
}
