package stats

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// A result rebuilt from its stream equals the recorder's own, and a
// stream cut in its last line still gives what came before, marked
// incomplete.
func TestStreamRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	sw := NewStreamWriter(&buf)
	r := NewRecorder([]string{"m"}, 2)
	r.OnTick(func(iv Interval) { sw.Interval(iv) })
	t0 := time.Unix(1_700_000_000, 0)
	r.Restart(t0)
	head := r.Snapshot()
	head.Scenario, head.Started, head.Config = "chat", t0, map[string]any{"run_id": "ab"}
	sw.Head(head)
	for s := 1; s <= 3; s++ {
		for i := 0; i < 10*s; i++ {
			r.Record(0, i, time.Duration(i+s)*time.Millisecond)
		}
		r.Add(Sent, int64(10*s))
		r.Error("send:timeout")
		r.Tick(t0.Add(time.Duration(s) * time.Second))
	}
	r.Tick(t0.Add(3*time.Second + 300*time.Millisecond)) // the partial last second
	want := r.Snapshot()
	want.Window = Window{Start: t0, End: t0.Add(3 * time.Second)}
	sw.Tail(want)
	if err := sw.Err(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStream(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Incomplete || got.Scenario != "chat" || got.Counters[Sent] != 60 || got.Errors["send:timeout"] != 3 || !got.Window.End.Equal(want.Window.End) {
		t.Errorf("rebuilt: %+v %+v incomplete %v", got.Counters, got.Errors, got.Incomplete)
	}
	a, _ := want.Metrics["m"].Histogram()
	b, _ := got.Metrics["m"].Histogram()
	if !a.Equals(b) || got.Metrics["m"].P95US != want.Metrics["m"].P95US {
		t.Error("rebuilt histogram differs from the recorder's")
	}
	if last := got.Series[len(got.Series)-1]; last.Span != 300 {
		t.Errorf("last interval span %d ms, want 300", last.Span)
	}
	// Cut: the tail and half of the last interval line are gone.
	lines := strings.SplitAfter(buf.String(), "\n")
	cut := strings.Join(lines[:len(lines)-3], "") + lines[len(lines)-3][:15]
	part, err := ReadStream(strings.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	if !part.Incomplete || part.Counters[Sent] != 60 {
		t.Errorf("cut stream: incomplete %v, sent %d (the intervals before the cut hold all 60)", part.Incomplete, part.Counters[Sent])
	}
	// A broken line in the middle is an error, not a silent loss.
	mid := strings.Join(lines[:2], "") + "{broken\n" + strings.Join(lines[2:], "")
	if _, err := ReadStream(strings.NewReader(mid)); !errors.Is(err, ErrNotStream) {
		t.Errorf("broken middle line: %v", err)
	}
	if _, err := ReadStream(strings.NewReader(`{"format":"xmppcheck-load/1"}` + "\n")); !errors.Is(err, ErrNotStream) {
		t.Errorf("not a stream: %v", err)
	}
}

func TestCheckMerge(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	shard := func(i, of int, run string, start time.Duration) Part {
		return Part{Name: run + string(rune('0'+i)), Result: &Result{Format: Format, Scenario: "chat",
			Config: map[string]any{"run_id": run, "rate": 100.0},
			Shards: []Shard{{Index: i, Of: of}},
			Window: Window{Start: t0.Add(start), End: t0.Add(start + 10*time.Second)}}}
	}
	for _, tt := range []struct {
		name  string
		parts []Part
		err   string
		warn  string
	}{
		{"one run", []Part{shard(0, 2, "a", 0), shard(1, 2, "a", 10*time.Millisecond)}, "", ""},
		{"duplicate", []Part{shard(0, 2, "a", 0), shard(0, 2, "a", 0)}, "is in both", ""},
		{"missing", []Part{shard(0, 3, "a", 0), shard(2, 3, "a", 0)}, "shards 1 of 3 are missing", ""},
		{"two runs", []Part{shard(0, 2, "a", 0), shard(1, 2, "b", 0)}, "same --run-id", ""},
		{"counts", []Part{shard(0, 2, "a", 0), shard(1, 3, "a", 0)}, "of 2 shards", ""},
		{"disjoint", []Part{shard(0, 2, "a", 0), shard(1, 2, "a", time.Minute)}, "do not overlap", ""},
		{"skew", []Part{shard(0, 2, "a", 0), shard(1, 2, "a", 3*time.Second)}, "", "start 3s apart"},
	} {
		warns, err := CheckMerge(tt.parts)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrMismatch)):
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.warn == "" && len(warns) > 0:
			t.Errorf("%s: warnings %v", tt.name, warns)
		case tt.warn != "" && (len(warns) == 0 || !strings.Contains(warns[0], tt.warn)):
			t.Errorf("%s: warnings %v, want %q", tt.name, warns, tt.warn)
		}
	}
	// Different settings under one run id.
	a, b := shard(0, 2, "a", 0), shard(1, 2, "a", 0)
	b.Result.Config["rate"] = 200.0
	if _, err := CheckMerge([]Part{a, b}); err == nil || !strings.Contains(err.Error(), "rate 100 vs 200") {
		t.Errorf("different settings: %v", err)
	}
}
