package report

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/loadgen/stats"
	"github.com/xmppcheck/xmppcheck/loadgen/threshold"
)

func sample() *stats.Result {
	rec := stats.NewRecorder([]string{"message", "send_lag"}, 1)
	t0 := time.Unix(1_700_000_000, 0)
	for s := 0; s < 3; s++ {
		for i := 1; i <= 100; i++ {
			rec.Record(0, 0, time.Duration(i*(s+1))*time.Millisecond)
			rec.Record(1, 0, time.Duration(i)*time.Microsecond)
		}
		rec.Add(stats.Sent, 100)
		rec.Add(stats.Completed, 100)
		rec.Tick(t0.Add(time.Duration(s) * time.Second))
	}
	rec.Error("send:timeout")
	rec.Tick(t0.Add(3 * time.Second))
	res := rec.Snapshot()
	res.Scenario = "chat"
	res.Window = stats.Window{Start: t0, End: t0.Add(3 * time.Second)}
	res.Shards = []stats.Shard{{Of: 1, Users: 10, CPUSeconds: 1.5, MemPerUser: 20000}}
	return &res
}

func TestText(t *testing.T) {
	th, _ := threshold.Parse("p99<10ms")
	res := sample()
	var b bytes.Buffer
	Text(&b, res, "message", []threshold.Outcome{th.Check(res, "message")}, "")
	out := b.String()
	for _, want := range []string{"scenario chat", "completed 300", "*message", "send_lag", "send:timeout", "threshold p99<10ms", "FAIL", "19.5 KiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	// The main metric comes first.
	if strings.Index(out, "*message") > strings.Index(out, "send_lag") {
		t.Error("metrics out of order")
	}
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	if err := CSV(&b, sample()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 { // header + 4 intervals
		t.Fatalf("%d rows: %v", len(rows), rows)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if rows[1][col["completed"]] != "100" || rows[3][col["message_count"]] != "100" || rows[4][col["errors"]] != "1" {
		t.Errorf("rows = %v", rows)
	}
	// The third second's p99 is about 3× the first's.
	if rows[1][col["message_p99_us"]] >= rows[3][col["message_p99_us"]] && len(rows[1][col["message_p99_us"]]) >= len(rows[3][col["message_p99_us"]]) {
		t.Errorf("p99 per second not distinct: %v vs %v", rows[1][col["message_p99_us"]], rows[3][col["message_p99_us"]])
	}
}

func TestHTML(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, sample(), "message", nil, ""); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	if strings.Count(h, "<svg") != 3 || !strings.Contains(h, "latency by percentile") || strings.Contains(h, "<?xml") {
		t.Errorf("charts missing or not inlined (%d svg)", strings.Count(h, "<svg"))
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http"} {
		if strings.Contains(h, bad) {
			t.Errorf("html not self-contained: %q", bad)
		}
	}
}

// The saturation warning appears when the generator's own send lag
// explains the latency, and not when the server does.
func TestSaturation(t *testing.T) {
	mk := func(lag, msg time.Duration) *stats.Result {
		rec := stats.NewRecorder([]string{"message", "send_lag"}, 1)
		for i := 0; i < 100; i++ {
			rec.Record(0, 0, msg)
			rec.Record(1, 0, lag)
		}
		rec.Add(stats.Scheduled, 100)
		rec.Tick(time.Unix(1_700_000_000, 0))
		res := rec.Snapshot()
		res.Scenario = "chat"
		return &res
	}
	if w := Saturation(mk(40*time.Millisecond, 50*time.Millisecond), "message"); !strings.Contains(w, "saturated") {
		t.Errorf("send lag 40ms of 50ms: no warning")
	}
	if w := Saturation(mk(100*time.Microsecond, 50*time.Millisecond), "message"); w != "" {
		t.Errorf("send lag 0.1ms of 50ms: %q", w)
	}
	var b bytes.Buffer
	HTML(&b, mk(40*time.Millisecond, 50*time.Millisecond), "message", nil, "")
	if !strings.Contains(b.String(), `id="saturation"`) {
		t.Error("html lacks the saturation warning")
	}
}
