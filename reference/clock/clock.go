package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and schedules callbacks on that time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine (real clock) or from Advance
	// (test clock) once d has passed on this clock. The returned Timer
	// cancels the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled callback.
type Timer interface {
	// Stop cancels the callback; it reports whether it did so before the
	// callback started.
	Stop() bool
}

// Real returns the wall clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Test is a clock that moves only when Advance is called. It is safe for
// concurrent use.
type Test struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	pending []*testTimer
	advMu   sync.Mutex // serialises Advance calls
}

// NewTest returns a test clock that starts at start.
func NewTest(start time.Time) *Test { return &Test{now: start} }

// Now returns the test clock's current time.
func (c *Test) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. A callback with d <= 0 runs at the next
// Advance (of any amount, including zero).
func (c *Test) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &testTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.pending = append(c.pending, t)
	return t
}

// Advance moves the clock forward by d (negative d is treated as zero) and
// runs, in deadline order and before returning, every callback whose
// deadline is now reached, including callbacks those callbacks schedule
// within the new time.
func (c *Test) Advance(d time.Duration) time.Time {
	if d < 0 {
		d = 0
	}
	c.advMu.Lock()
	defer c.advMu.Unlock()
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	for {
		t := c.popDue(now)
		if t == nil {
			return now
		}
		t.f()
	}
}

// popDue removes and returns the earliest callback due at now, or nil.
func (c *Test) popDue(now time.Time) *testTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.SliceStable(c.pending, func(i, j int) bool {
		a, b := c.pending[i], c.pending[j]
		if !a.when.Equal(b.when) {
			return a.when.Before(b.when)
		}
		return a.seq < b.seq
	})
	if len(c.pending) == 0 || c.pending[0].when.After(now) {
		return nil
	}
	t := c.pending[0]
	c.pending = c.pending[1:]
	t.fired = true
	return t
}

// Pending returns the number of callbacks not yet run.
func (c *Test) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

type testTimer struct {
	c     *Test
	when  time.Time
	seq   uint64
	f     func()
	fired bool
}

func (t *testTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.fired {
		return false
	}
	for i, p := range t.c.pending {
		if p == t {
			t.c.pending = append(t.c.pending[:i], t.c.pending[i+1:]...)
			t.fired = true
			return true
		}
	}
	return false
}

// Every runs job every interval on clock c until the returned stop function
// is called. On a test clock, an Advance that spans several intervals runs
// job once and schedules the next run one interval after the new time: jobs
// compare stored times with c.Now() rather than counting runs.
func Every(c Clock, interval time.Duration, job func(now time.Time)) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		timer   Timer
	)
	var tick func()
	tick = func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		mu.Unlock()
		job(c.Now())
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = c.AfterFunc(interval, tick)
		}
	}
	mu.Lock()
	timer = c.AfterFunc(interval, tick)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
	}
}
