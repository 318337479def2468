package report

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestSARIF (issue 12): a SARIF 2.1.0 log with one rule and one result per
// claim; a failing claim is level error, a waived one suppressed with its
// reason.
func TestSARIF(t *testing.T) {
	r := sample(Pass, Fail, NotTestable, Fail)
	r.Results[3].Waiver = &Waiver{Reason: "known, OPS-1", Expires: "2099-01-01"}
	r.Finish()
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, r); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID       string `json:"ruleId"`
				Kind         string `json:"kind"`
				Level        string `json:"level"`
				Suppressions []struct {
					Kind          string `json:"kind"`
					Justification string `json:"justification"`
				} `json:"suppressions"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "xmppcheck" {
		t.Fatalf("%s", buf.Bytes())
	}
	run := log.Runs[0]
	if len(run.Results) != 4 || len(run.Tool.Driver.Rules) != 4 {
		t.Fatalf("%d results, %d rules", len(run.Results), len(run.Tool.Driver.Rules))
	}
	want := []struct{ kind, level string }{{"pass", "none"}, {"fail", "error"}, {"notApplicable", "none"}, {"fail", "none"}}
	for i, w := range want {
		if got := run.Results[i]; got.Kind != w.kind || got.Level != w.level {
			t.Errorf("result %d (%s): %s/%s, want %s/%s", i, got.RuleID, got.Kind, got.Level, w.kind, w.level)
		}
	}
	if s := run.Results[3].Suppressions; len(s) != 1 || s[0].Kind != "external" || s[0].Justification == "" {
		t.Errorf("waived result: suppressions %+v", s)
	}
	if len(run.Results[1].Suppressions) != 0 {
		t.Error("an unwaived fail is suppressed")
	}
	if r.Summary.ExitCode != ExitFailed || r.Summary.Waived != 1 {
		t.Errorf("summary %+v", r.Summary)
	}
}

// TestJUnitWaivers (issue 12): a waived failure is a skip in JUnit (a CI
// check agrees with exit 0), an expired waiver a failure.
func TestJUnitWaivers(t *testing.T) {
	r := sample(Fail, Pass)
	r.Results[0].Waiver = &Waiver{Reason: "known, OPS-1", Expires: "2099-01-01"}
	r.Results[1].Waiver = &Waiver{Reason: "stale", Expires: "2020-01-01", Expired: true}
	r.Finish()
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, w := range []string{`failures="1"`, `skipped="1"`, "waived until 2099-01-01 (known, OPS-1)", `type="waiver-expired"`} {
		if !bytes.Contains(buf.Bytes(), []byte(w)) {
			t.Errorf("JUnit lacks %q:\n%s", w, out)
		}
	}
}
