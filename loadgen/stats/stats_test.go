package stats

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestRecorderTickAndSnapshot(t *testing.T) {
	r := NewRecorder([]string{"a", "b"}, 4)
	base := time.Unix(1_700_000_000, 0)
	for i := 0; i < 100; i++ {
		r.Record(r.Metric("a"), i, time.Duration(i+1)*time.Millisecond)
	}
	r.Add(Completed, 100)
	r.Tick(base)
	r.Record(r.Metric("a"), 0, time.Hour) // beyond the range: clamped
	r.Record(r.Metric("nope"), 0, time.Second)
	r.Add(Completed, 1)
	r.Error("x")
	r.Tick(base) // same second: stamped one later
	res := r.Snapshot()
	if len(res.Series) != 2 || res.Series[0].T != base.Unix() || res.Series[1].T != base.Unix()+1 {
		t.Fatalf("series = %+v", res.Series)
	}
	if res.Series[0].Counters[Completed] != 100 || res.Series[1].Counters[Completed] != 1 || res.Counters[Errors] != 1 {
		t.Errorf("counters: %+v / %+v", res.Series, res.Counters)
	}
	a := res.Metrics["a"]
	if a.Count != 101 || a.MaxUS < HighestUS*99/100 || a.P50US < 49000 || a.P50US > 52000 {
		t.Errorf("metric a = %+v", a)
	}
	if res.Metrics["b"] != nil {
		t.Error("empty metric b in the result")
	}
}

func TestWriteReadMerge(t *testing.T) {
	mk := func(scenario string, ms ...int) *Result {
		r := NewRecorder([]string{"m"}, 1)
		for _, v := range ms {
			r.Record(0, 0, time.Duration(v)*time.Millisecond)
		}
		r.Add(Sent, int64(len(ms)))
		r.Tick(time.Unix(100, 0))
		res := r.Snapshot()
		res.Scenario = scenario
		return &res
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "a.json")
	a := mk("chat", 1, 2, 3)
	if err := a.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Merge(back, mk("chat", 1000))
	if err != nil {
		t.Fatal(err)
	}
	if m.Metrics["m"].Count != 4 || m.Counters[Sent] != 4 || m.Metrics["m"].MaxUS < 999000 || len(m.Series) != 1 {
		t.Errorf("merged = %+v", m.Metrics["m"])
	}
	if _, err := Merge(a, mk("login", 1)); !errors.Is(err, ErrMismatch) {
		t.Errorf("merging two scenarios: %v", err)
	}
	if _, err := Merge(); err == nil {
		t.Error("merging nothing succeeded")
	}
}
