package ratelimit

import (
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/clock"
)

// Window counts events per key over a sliding window of time. It is safe for
// concurrent use.
type Window struct {
	clock  clock.Clock
	max    int
	window time.Duration

	mu     sync.Mutex
	events map[string][]time.Time
	adds   int
}

// NewWindow allows max events per key within window on clock c.
func NewWindow(c clock.Clock, max int, window time.Duration) *Window {
	return &Window{clock: c, max: max, window: window, events: map[string][]time.Time{}}
}

// live drops events older than the window and returns those left.
func (w *Window) live(key string, now time.Time) []time.Time {
	ev := w.events[key]
	i := 0
	for i < len(ev) && !ev[i].After(now.Add(-w.window)) {
		i++
	}
	if i > 0 {
		ev = append(ev[:0], ev[i:]...)
		if len(ev) == 0 {
			delete(w.events, key)
		} else {
			w.events[key] = ev
		}
	}
	return ev
}

// Allow reports whether another event for key is allowed now (fewer than
// max in the window) and, if not, how long until one is.
func (w *Window) Allow(key string) (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	ev := w.live(key, now)
	if len(ev) < w.max {
		return true, 0
	}
	return false, ev[len(ev)-w.max].Add(w.window).Sub(now)
}

// Add records an event for key now.
func (w *Window) Add(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	w.events[key] = append(w.live(key, now), now)
	if w.adds++; w.adds%1024 == 0 {
		for k := range w.events {
			w.live(k, now)
		}
	}
}

// Reset forgets key's events.
func (w *Window) Reset(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.events, key)
}

// Max returns the number of events allowed per window.
func (w *Window) Max() int { return w.max }

// Span returns the window.
func (w *Window) Span() time.Duration { return w.window }

// Cap limits concurrent holders per key (connections per address). It is
// safe for concurrent use.
type Cap struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewCap allows max concurrent holders per key; max <= 0 means no limit.
func NewCap(max int) *Cap { return &Cap{max: max, n: map[string]int{}} }

// Acquire takes a slot for key, or reports false when key holds max.
func (c *Cap) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

// Release returns a slot taken by Acquire.
func (c *Cap) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] <= 1 {
		delete(c.n, key)
	} else {
		c.n[key]--
	}
}
