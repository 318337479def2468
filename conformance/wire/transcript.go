package wire

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Transcript records a session's traffic, one line per read or write, with
// secrets redacted before they are stored: SASL payloads (<auth>,
// <response>, <challenge>, <success>), XEP-0077 <password> elements, and
// any registered secret in plain, base64 or hex form.
type Transcript struct {
	mu      sync.Mutex
	b       strings.Builder
	start   time.Time
	secrets [][]byte
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
	p := []byte(s)
	t.secrets = append(t.secrets, p, []byte(base64.StdEncoding.EncodeToString(p)),
		[]byte(fmt.Sprintf("%x", p)), []byte(escapeXML(s)))
}

func escapeXML(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\'':
			b.WriteString("&apos;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

var saslPayload = regexp.MustCompile(`(?s)(<(auth|response|challenge|success|password)\b[^>]*>)([^<]+)(</(?:[a-z]+:)?(auth|response|challenge|success|password)>)`)

// Redact applies the transcript's redaction to s.
func (t *Transcript) Redact(s string) string {
	s = saslPayload.ReplaceAllString(s, "${1}[redacted]${4}")
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, sec := range t.secrets {
		if len(sec) > 0 {
			s = strings.ReplaceAll(s, string(sec), "[redacted]")
		}
	}
	return s
}

// Record adds a line: dir is "C" (client to server), "S" (server to
// client) or "*" (a note from the probe).
func (t *Transcript) Record(dir, s string) {
	if t == nil {
		return
	}
	line := fmt.Sprintf("%7.3fs %s: %s\n", time.Since(t.start).Seconds(), dir, strings.TrimRight(t.Redact(s), "\n"))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b.Len()+len(line) > t.limit {
		if !strings.HasSuffix(t.b.String(), "[transcript truncated]\n") {
			t.b.WriteString("[transcript truncated]\n")
		}
		return
	}
	t.b.WriteString(line)
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
	if t == nil {
		return len(p), nil
	}
	s := t.Redact(string(p))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b.Len()+len(s) > t.limit {
		if !strings.HasSuffix(t.b.String(), "[transcript truncated]\n") {
			t.b.WriteString("[transcript truncated]\n")
		}
		return len(p), nil
	}
	t.b.WriteString(s)
	return len(p), nil
}
