package upload

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/spec"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// gcmSealer is a test Sealer: AES-256-GCM under a random key.
type gcmSealer struct{ aead cipher.AEAD }

func newTestSealer(t testing.TB) *gcmSealer {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	b, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return &gcmSealer{a}
}

func (g *gcmSealer) Seal(p []byte) ([]byte, error) {
	n := make([]byte, g.aead.NonceSize())
	rand.Read(n)
	return g.aead.Seal(n, n, p, nil), nil
}

func (g *gcmSealer) Open(c []byte) ([]byte, error) {
	if len(c) < g.aead.NonceSize() {
		return nil, errors.New("short")
	}
	return g.aead.Open(nil, c[:g.aead.NonceSize()], c[g.aead.NonceSize():], nil)
}

// testClock is a movable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func defaultPolicy(t testing.TB) *spec.Policy {
	t.Helper()
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func slogText(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
