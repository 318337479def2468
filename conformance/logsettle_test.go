package conformance

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// lateLogs is the embedded server whose logs show what was written only
// from the third read on, as a server whose logger writes asynchronously
// (ejabberd's) shows a spec's line a moment after the event; the first
// reads show the logs as they were when the target started.
type lateLogs struct {
	*target.Embedded
	start *evidence.Corpus
	reads atomic.Int32
}

func (l *lateLogs) Logs(ctx context.Context) (*evidence.Corpus, error) {
	if l.reads.Add(1) <= 2 {
		return l.start, nil
	}
	return l.Embedded.Logs(ctx)
}

// TestLogMarkWrittenLate: a log line that reaches the logs a moment after
// the spec's event is still the spec's control (the logs are read again
// within a bound), so a live channel is not reported blind; the blind
// channel tests prove that a mark that never comes still is.
func TestLogMarkWrittenLate(t *testing.T) {
	pol := defaultPolicy(t)
	for _, id := range []spec.ClaimID{spec.PrivacyNoClientIP, spec.PrivacyNoConnectionTimes} {
		t.Run(string(id), func(t *testing.T) {
			emb := startEmbedded(t, pol)
			ctx := context.Background()
			start, err := emb.Logs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tg := &lateLogs{Embedded: emb, start: start}
			res := checkOne(t, tg, id, 60*time.Second)
			if res.Verdict != report.Pass {
				t.Errorf("%s: %s (%s), want pass: the mark came late, not never", id, res.Verdict, res.Reason)
			}
			if tg.reads.Load() <= 2 {
				t.Errorf("the logs were read %d time(s): the late-log path was not exercised", tg.reads.Load())
			}
		})
	}
}
