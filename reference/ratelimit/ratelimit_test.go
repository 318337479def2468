package ratelimit

import (
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/clock"
)

func TestWindow(t *testing.T) {
	c := clock.NewTest(time.Unix(1000, 0))
	w := NewWindow(c, 3, 10*time.Minute)
	for i := 0; i < 3; i++ {
		if ok, _ := w.Allow("a"); !ok {
			t.Fatalf("event %d refused", i+1)
		}
		w.Add("a")
		c.Advance(time.Minute)
	}
	ok, wait := w.Allow("a")
	if ok || wait != 7*time.Minute {
		t.Fatalf("fourth: ok=%v wait=%v, want refused for 7m", ok, wait)
	}
	if ok, _ := w.Allow("b"); !ok {
		t.Fatal("another key is limited too")
	}
	c.Advance(7 * time.Minute)
	if ok, _ := w.Allow("a"); !ok {
		t.Fatal("still refused after the oldest event left the window")
	}
	w.Reset("a")
	if len(w.events) != 0 {
		t.Fatalf("events kept: %v", w.events)
	}
}

func TestCap(t *testing.T) {
	c := NewCap(2)
	first, second, third := c.Acquire("x"), c.Acquire("x"), c.Acquire("x")
	if !first || !second || third {
		t.Fatal("cap of 2 not enforced")
	}
	if !c.Acquire("y") {
		t.Fatal("other key refused")
	}
	c.Release("x")
	if !c.Acquire("x") {
		t.Fatal("released slot not reusable")
	}
	c.Release("x")
	c.Release("x")
	c.Release("y")
	if len(c.n) != 0 {
		t.Fatalf("counts kept: %v", c.n)
	}
}
