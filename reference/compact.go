package reference

import (
	"log/slog"
	"sync"
	"time"

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
	stopped bool
}

const compactDelay = 2 * time.Second

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
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timer = time.AfterFunc(compactDelay, c.run)
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

func (c *compactor) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	if err := c.st.Compact(); err != nil {
		c.log.Error("store compaction failed", "err", err)
	}
}

func (c *compactor) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.timer != nil {
		c.timer.Stop()
	}
}
