package conformance

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// leakyLogs is the embedded reference server with a deliberately broken
// log: it writes line(addr) for every client address the server sees.
type leakyLogs struct {
	*target.Embedded
	line func(netip.Addr) string

	mu   sync.Mutex
	seen []netip.Addr
}

func (l *leakyLogs) SeenAddrs(ctx context.Context, local netip.Addr) []netip.Addr {
	out := l.Embedded.SeenAddrs(ctx, local)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range out {
		if !slices.Contains(l.seen, a) {
			l.seen = append(l.seen, a)
		}
	}
	return out
}

func (l *leakyLogs) Logs(ctx context.Context) (*evidence.Corpus, error) {
	c, err := l.Embedded.Logs(ctx)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var extra []byte
	for _, a := range l.seen {
		extra = fmt.Appendf(extra, "%s\n", l.line(a))
	}
	leak := evidence.NewCorpus(0)
	if err := leak.Add("log:leak.log", extra); err != nil {
		return nil, err
	}
	return evidence.Merge(c, leak), nil
}

// TestNoClientIPBothWays: privacy.no-client-ip fails a server that logs the
// address of successful sessions, even on a line that reads like an error,
// and passes one that logs only the address of a failed login.
func TestNoClientIPBothWays(t *testing.T) {
	pol := defaultPolicy(t)
	tests := []struct {
		name string
		line func(netip.Addr) string
		want report.Verdict
	}{
		{"session line", func(a netip.Addr) string { return "INFO c2s session established addr=" + a.String() }, report.Fail},
		// A line with "failed" in it is allowed only for an address that
		// did fail to log in: the spec's session address never did.
		{"error-looking line", func(a netip.Addr) string { return "WARN stream failed to resume addr=" + a.String() }, report.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emb := startEmbedded(t, pol)
			res := checkOne(t, &leakyLogs{Embedded: emb, line: tt.line}, spec.PrivacyNoClientIP, 30*time.Second)
			if res.Verdict != tt.want {
				t.Errorf("%s (%s), want %s\n%v", res.Verdict, res.Reason, tt.want, res.Evidence)
			}
		})
	}
}
