package threshold

import (
	"errors"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

func result(t *testing.T) *stats.Result {
	t.Helper()
	rec := stats.NewRecorder([]string{"message", "login"}, 2)
	for i := 1; i <= 1000; i++ {
		rec.Record(rec.Metric("message"), i, time.Duration(i)*time.Millisecond/10) // 0.1ms .. 100ms
	}
	rec.Record(rec.Metric("login"), 0, 300*time.Millisecond)
	rec.Add(stats.Scheduled, 1000)
	rec.Add(stats.Sent, 1000)
	rec.Add(stats.Expected, 1000)
	rec.Add(stats.Completed, 998)
	rec.Add(stats.LateStarts, 20)
	rec.Error("send:timeout")
	rec.Tick(time.Now())
	res := rec.Snapshot()
	res.Window = stats.Window{Start: time.Unix(0, 0), End: time.Unix(10, 0)}
	return &res
}

func TestCheck(t *testing.T) {
	res := result(t)
	tests := []struct {
		expr string
		pass bool
	}{
		{"p99<100ms", true}, // p99 ≈ 99ms
		{"p99<90ms", false},
		{"p50 <= 51ms", true},
		{"p99.9>=99ms", true},
		{"max<101ms", true},
		{"message.max<50ms", false},
		{"login.p99<1s", true},
		{"login.p99<200ms", false},
		{"errors<0.5%", true}, // (1 error + 2 lost) / 1000 = 0.3%
		{"errors<0.2%", false},
		{"errors==3", true},
		{"lost==0", false},
		{"lost<=2", true},
		{"late<5%", true}, // 20/1000
		{"late<10", false},
		{"rate>=99", true}, // 998 / 10 s
		{"rate>=100", false},
		{"mean<60ms", true},
		{"min>=100us", true},
	}
	for _, tt := range tests {
		th, err := Parse(tt.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		o := th.Check(res, "message")
		if o.Err != nil || o.Pass != tt.pass {
			t.Errorf("%q: pass=%v actual=%s err=%v, want pass=%v", tt.expr, o.Pass, o.Actual, o.Err, tt.pass)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, expr := range []string{"", "p99", "p99<", "p101<5ms", "foo<1", "rate>=5%", "login.errors<1", "p99<fast", "lost<1%"} {
		if _, err := Parse(expr); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) err = %v, want ErrSyntax", expr, err)
		}
	}
	res := result(t)
	th, _ := Parse("presence.p99<1s")
	if o := th.Check(res, "message"); o.Err == nil || o.Pass {
		t.Errorf("missing metric must be an error, got %+v", o)
	}
}
