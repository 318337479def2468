package wire

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// Transcript records a session's traffic, one line per read or write, with
// secrets redacted before they are stored: what xmppclient.Redact removes
// (SASL payloads, XEP-0077 <password/> elements and password form fields)
// and any registered secret in plain, XML-escaped, base64 or hex form.
type Transcript struct {
	mu      sync.Mutex
	b       strings.Builder
	start   time.Time
	secrets []string
	limit   int
}

// NewTranscript returns an empty transcript that keeps at most limit bytes
// (0 means 256 KiB).
func NewTranscript(limit int) *Transcript {
	if limit <= 0 {
		limit = 256 << 10
	}
	return &Transcript{start: time.Now(), limit: limit}
}

// AddSecret registers a string that must never appear in the transcript.
func (t *Transcript) AddSecret(s string) {
	if t == nil || s == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.secrets = append(t.secrets, s, base64.StdEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s)))
}

// Redact applies the transcript's redaction to s.
func (t *Transcript) Redact(s string) string {
	t.mu.Lock()
	secrets := t.secrets
	t.mu.Unlock()
	return string(xmppclient.Redact([]byte(s), secrets))
}

// Record adds a line: dir is "C" (client to server), "S" (server to
// client) or "*" (a note from the probe).
func (t *Transcript) Record(dir, s string) {
	if t == nil {
		return
	}
	t.append(fmt.Sprintf("%7.3fs %s: %s\n", time.Since(t.start).Seconds(), dir, strings.TrimRight(t.Redact(s), "\n")))
}

// Notef adds a note from the probe.
func (t *Transcript) Notef(format string, args ...any) { t.Record("*", fmt.Sprintf(format, args...)) }

// String returns the transcript so far.
func (t *Transcript) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// Write lets the transcript receive the lines internal/xmppclient writes
// (already redacted by the client; redacted again here for the secrets the
// transcript knows).
func (t *Transcript) Write(p []byte) (int, error) {
	if t != nil {
		t.append(t.Redact(string(p)))
	}
	return len(p), nil
}

// append adds redacted text, or once the limit is reached a single
// truncation mark.
func (t *Transcript) append(s string) {
	const mark = "[transcript truncated]\n"
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b.Len()+len(s) > t.limit {
		if !strings.HasSuffix(t.b.String(), mark) {
			t.b.WriteString(mark)
		}
		return
	}
	t.b.WriteString(s)
}
