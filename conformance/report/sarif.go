package report

import (
	"fmt"
	"io"

	"github.com/owenrumney/go-sarif/v2/sarif"
)

// sarifKinds maps verdicts to SARIF 2.1.0 result kinds (§3.27.9).
var sarifKinds = map[Verdict]string{Pass: "pass", Fail: "fail", NotTestable: "notApplicable", Error: "open"}

// WriteSARIF writes the report as a SARIF 2.1.0 log for code-scanning
// interfaces: one rule per claim (its title, what passes, the policy's
// quote), one result per claim, level error for a failing claim, the
// policy file as the location, and a waived failure as an accepted
// external suppression (§3.35) carrying the waiver's reason.
// github.com/owenrumney/go-sarif carries the SARIF object model.
func WriteSARIF(w io.Writer, r *Report) error {
	log, err := sarif.New(sarif.Version210)
	if err != nil {
		return fmt.Errorf("report: sarif: %w", err)
	}
	run := sarif.NewRun(*sarif.NewSimpleTool(r.Tool.Name))
	run.Tool.Driver.Version = &r.Tool.Version
	for _, res := range r.Results {
		rule := run.AddRule(res.Claim).WithName(res.Title).
			WithShortDescription(sarif.NewMultiformatMessageString(res.Title)).
			WithFullDescription(sarif.NewMultiformatMessageString("Passes when: " + res.Passes)).
			WithTextHelp(fmt.Sprintf("%s %s: “%s”", r.Policy.Name, sectionRef(res.Quote.Section), res.Quote.Text))
		props := sarif.Properties{"tags": res.Labels}
		if len(res.Params) > 0 {
			props["parameters"] = res.Params
		}
		rule.WithProperties(props)

		level := "none"
		if res.Failing(r.Strict) {
			level = "error"
		} else if res.Verdict == Error {
			level = "warning"
		}
		msg := string(res.Verdict)
		if res.Reason != "" {
			msg += ": " + res.Reason
		}
		if res.Waiver != nil && res.Waiver.Expired {
			msg += fmt.Sprintf(" (waiver expired %s: %s)", res.Waiver.Expires, res.Waiver.Reason)
		}
		out := run.CreateResultForRule(res.Claim).WithKind(sarifKinds[res.Verdict]).WithLevel(level).
			WithMessage(sarif.NewTextMessage(msg))
		if r.Policy.File != "" {
			out.AddLocation(sarif.NewLocationWithPhysicalLocation(sarif.NewPhysicalLocation().
				WithArtifactLocation(sarif.NewSimpleArtifactLocation(r.Policy.File))))
		}
		if res.Waived() {
			out.AddSuppression(sarif.NewSuppression("external").WithStatus("accepted").
				WithJustifcation(fmt.Sprintf("%s (waiver until %s)", res.Waiver.Reason, res.Waiver.Expires)))
		}
	}
	run.AddInvocation(r.Summary.ExitCode != ExitError)
	log.AddRun(run)
	if err := log.PrettyWrite(w); err != nil {
		return fmt.Errorf("report: sarif: %w", err)
	}
	return nil
}
