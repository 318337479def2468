package testenv_test

import (
	"runtime"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
)

func TestInCI(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{
		{"", false}, {"0", false}, {"false", false}, {"no", false},
		{"true", true}, {"1", true}, {"yes", true},
	} {
		t.Setenv("CI", tt.value)
		if got := testenv.InCI(); got != tt.want {
			t.Errorf("CI=%q: InCI() = %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestRequireToolFindsOne(t *testing.T) {
	t.Setenv("CI", "true") // a missing tool would fail the test
	if p := testenv.RequireTool(t, "", "xmppcheck-no-such-tool", "go"); p == "" {
		t.Fatal("RequireTool found no path for go")
	}
}

// recorder is a testing.TB that records how a test ended; like testing.T
// it ends the goroutine at Fatalf and Skipf.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = format
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = format
	runtime.Goexit()
}

func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		ci            string
		fail, skipped bool
	}{
		{"", false, true},
		{"true", true, false},
	} {
		t.Setenv("CI", tt.ci)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			testenv.Missing(r, "a tool is not installed")
		}()
		<-done
		if r.failed != tt.fail || r.skipped != tt.skipped {
			t.Errorf("CI=%q: failed=%v skipped=%v, want %v %v", tt.ci, r.failed, r.skipped, tt.fail, tt.skipped)
		}
	}
}
