package logburst_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/logburst"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRepeatsSummed(t *testing.T) {
	var out syncBuf
	b := logburst.New(slog.New(slog.NewTextHandler(&out, nil)), 50*time.Millisecond)
	for range 1000 {
		b.Warn("failed login", "10.0.0.1", []any{"addr", "10.0.0.1"}, "addr", "10.0.0.1", "conn", "x")
	}
	b.Warn("failed login", "10.0.0.2", []any{"addr", "10.0.0.2"}, "addr", "10.0.0.2", "conn", "y")
	// The first of each kind is logged at once.
	if got := strings.Count(out.String(), "failed login"); got != 2 {
		t.Fatalf("%d lines before the interval ended, want 2:\n%s", got, out.String())
	}
	for !strings.Contains(out.String(), "repeated=999") {
		time.Sleep(10 * time.Millisecond) // bounded by the test timeout; no timed assertion
	}
	if got := strings.Count(out.String(), "\n"); got != 3 {
		t.Errorf("%d lines for 1001 events, want 3:\n%s", got, out.String())
	}
}
