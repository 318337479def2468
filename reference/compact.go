package reference

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/xmppcheck/xmppcheck/reference/store"
)

// compactor rewrites the store shortly after deletions, so that deleted
// records do not linger (sealed) in freed pages of the file. Requests within
// a quiet period coalesce into one compaction.
type compactor struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	timer   *time.Timer
	first   time.Time // oldest request not yet served
	stopped bool
	running sync.Mutex // one compaction at a time
}

const (
	compactDelay    = 2 * time.Second  // quiet period before compacting
	compactMaxDelay = 60 * time.Second // under steady deletes, compact anyway
)

func newCompactor(st *store.Store, log *slog.Logger) *compactor {
	return &compactor{st: st, log: log}
}

// soon schedules a compaction after a short quiet period.
func (c *compactor) soon() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	now := time.Now()
	if c.first.IsZero() {
		c.first = now
	}
	delay := compactDelay
	if wait := c.first.Add(compactMaxDelay).Sub(now); wait < delay {
		delay = max(wait, 0)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timer = time.AfterFunc(delay, c.run)
}

// now compacts at once.
func (c *compactor) now() {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	c.run()
}

// run compacts. It must not hold c.mu while compacting: Compact waits for
// store transactions whose commit hooks call soon.
func (c *compactor) run() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.first = time.Time{}
	c.mu.Unlock()
	c.running.Lock()
	defer c.running.Unlock()
	if err := c.st.Compact(); err != nil && !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		c.log.Error("store compaction failed", "err", err)
	}
}

// stop cancels pending compactions and waits for a running one.
func (c *compactor) stop() {
	c.mu.Lock()
	c.stopped = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	// Wait for a compaction in progress: it holds running while it runs.
	c.running.Lock()
	//lint:ignore SA2001 the empty critical section is the wait
	c.running.Unlock()
}
