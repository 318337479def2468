package clock

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestTestClockAdvanceRunsDueCallbacksInOrder(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewTest(start)
	var order []string
	c.AfterFunc(2*time.Hour, func() { order = append(order, "2h") })
	c.AfterFunc(time.Hour, func() { order = append(order, "1h") })
	late := c.AfterFunc(3*time.Hour, func() { order = append(order, "3h") })

	if got := c.Advance(90 * time.Minute); !got.Equal(start.Add(90 * time.Minute)) {
		t.Fatalf("Advance returned %v", got)
	}
	if len(order) != 1 || order[0] != "1h" {
		t.Fatalf("after 90m ran %v, want [1h]", order)
	}
	if !late.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	c.Advance(10 * time.Hour)
	if len(order) != 2 || order[1] != "2h" {
		t.Fatalf("after 10h ran %v, want [1h 2h] (3h was stopped)", order)
	}
	if c.Pending() != 0 {
		t.Fatalf("Pending = %d, want 0", c.Pending())
	}
}

func TestEveryOnTestClock(t *testing.T) {
	c := NewTest(time.Unix(0, 0))
	var runs atomic.Int32
	var seen []time.Time
	stop := Every(c, time.Hour, func(now time.Time) { runs.Add(1); seen = append(seen, now) })
	c.Advance(30 * time.Minute)
	if runs.Load() != 0 {
		t.Fatalf("ran %d times before the first interval", runs.Load())
	}
	c.Advance(7 * 24 * time.Hour)
	if runs.Load() != 1 {
		t.Fatalf("ran %d times for one long Advance, want 1", runs.Load())
	}
	if !seen[0].Equal(time.Unix(0, 0).Add(30*time.Minute + 7*24*time.Hour)) {
		t.Fatalf("job saw %v, want the advanced time", seen[0])
	}
	c.Advance(time.Hour)
	if runs.Load() != 2 {
		t.Fatalf("ran %d times, want 2", runs.Load())
	}
	stop()
	c.Advance(5 * time.Hour)
	if runs.Load() != 2 {
		t.Fatalf("ran after stop: %d", runs.Load())
	}
}

func TestRealClockAfterFunc(t *testing.T) {
	c := Real()
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("real AfterFunc never fired")
	}
}
