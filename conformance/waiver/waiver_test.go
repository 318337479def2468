package waiver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/report"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "waivers.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(verdicts map[string]report.Verdict) *report.Report {
	r := &report.Report{}
	for _, c := range []string{"offline.retention", "mam.disabled", "upload.retention"} {
		if v, ok := verdicts[c]; ok {
			r.Results = append(r.Results, report.Result{Claim: c, Verdict: v})
		}
	}
	r.Finish()
	return r
}

// TestApply (issue 12): a waived fail exits 0 and is counted as waived; an
// expired waiver fails the run; a fail without a waiver still fails.
func TestApply(t *testing.T) {
	f, err := Load(write(t, `waivers:
  - claim: offline.retention
    reason: Prosody 0.12 never expires offline messages (OPS-1)
    expires: 2026-12-31
  - claim: upload.retention
    reason: old exception
    expires: 2026-01-01
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		verdicts map[string]report.Verdict
		now      time.Time
		exit     int
		waived   int
	}{
		{"waived fail", map[string]report.Verdict{"offline.retention": report.Fail, "mam.disabled": report.Pass}, now, report.ExitPass, 1},
		{"waiver holds through its last day", map[string]report.Verdict{"offline.retention": report.Fail}, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), report.ExitPass, 1},
		{"waiver past its date", map[string]report.Verdict{"offline.retention": report.Fail}, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), report.ExitFailed, 0},
		{"expired waiver on a pass fails", map[string]report.Verdict{"upload.retention": report.Pass}, now, report.ExitFailed, 0},
		{"unwaived fail", map[string]report.Verdict{"mam.disabled": report.Fail}, now, report.ExitFailed, 0},
		{"error is never waived", map[string]report.Verdict{"offline.retention": report.Error}, now, report.ExitError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(tt.verdicts)
			f.Apply(r, tt.now)
			if r.Summary.ExitCode != tt.exit || r.Summary.Waived != tt.waived {
				t.Errorf("exit %d waived %d, want %d and %d (%+v)", r.Summary.ExitCode, r.Summary.Waived, tt.exit, tt.waived, r.Summary)
			}
		})
	}
}

func TestLoadProblems(t *testing.T) {
	_, err := Load(write(t, `waivers:
  - claim: offline.retension
    expires: 31/12/2026
  - claim: mam.disabled
    reason: r
    expires: 2026-12-31
    owner: me
`))
	if err == nil {
		t.Fatal("no error")
	}
	// Unknown keys stop the decoder; the rest is reported at once.
	if !strings.Contains(err.Error(), "owner") {
		t.Errorf("unknown key not reported: %v", err)
	}
	_, err = Load(write(t, "waivers:\n  - claim: offline.retension\n    expires: 31/12/2026\n"))
	for _, w := range []string{`unknown claim id "offline.retension" (did you mean "offline.retention"?)`, "a reason is required", `expires "31/12/2026" is not a date`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("lacks %q: %v", w, err)
		}
	}
}
