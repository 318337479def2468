package logburst

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the summing interval of New with zero.
const DefaultInterval = 10 * time.Second

// maxKeys bounds the kinds tracked at once; beyond it, repeats of new
// kinds are summed under one line without the key.
const maxKeys = 10000

// Logger sums up repeated events.
type Logger struct {
	l        *slog.Logger
	interval time.Duration

	mu       sync.Mutex
	kinds    map[kind]*entry
	overflow map[string]int
}

type kind struct {
	level    slog.Level
	msg, key string
}

type entry struct {
	n    int
	args []any
}

// New sums events logged to l over interval (DefaultInterval if zero).
func New(l *slog.Logger, interval time.Duration) *Logger {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Logger{l: l, interval: interval, kinds: map[kind]*entry{}, overflow: map[string]int{}}
}

// Warn logs msg with args at WARN unless an event with the same msg and
// key was logged within the interval; then it is counted, and the count is
// logged with sumArgs (for example the address alone) when the interval
// ends.
func (b *Logger) Warn(msg, key string, sumArgs []any, args ...any) {
	b.log(slog.LevelWarn, msg, key, sumArgs, args)
}

func (b *Logger) log(level slog.Level, msg, key string, sumArgs, args []any) {
	k := kind{level, msg, key}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.kinds[k]; e != nil {
		e.n++
		return
	}
	if len(b.kinds) >= maxKeys {
		if b.overflow[msg] == 0 {
			time.AfterFunc(b.interval, func() { b.flushOverflow(level, msg) })
		}
		b.overflow[msg]++
		return
	}
	b.l.Log(context.Background(), level, msg, args...)
	b.kinds[k] = &entry{args: sumArgs}
	time.AfterFunc(b.interval, func() { b.flush(k) })
}

func (b *Logger) flush(k kind) {
	b.mu.Lock()
	e := b.kinds[k]
	delete(b.kinds, k)
	b.mu.Unlock()
	if e != nil && e.n > 0 {
		args := append(append([]any{}, e.args...), "repeated", e.n, "in_last", b.interval)
		b.l.Log(context.Background(), k.level, k.msg, args...)
	}
}

func (b *Logger) flushOverflow(level slog.Level, msg string) {
	b.mu.Lock()
	n := b.overflow[msg]
	delete(b.overflow, msg)
	b.mu.Unlock()
	if n > 0 {
		b.l.Log(context.Background(), level, msg, "repeated", n, "in_last", b.interval, "sources", "many")
	}
}
