package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnit XML as read by GitHub/GitLab test reporting (the common subset of
// the Ant schema): one testsuite, one testcase per claim.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure"`
	Error     *junitMessage `xml:"error"`
	Skipped   *junitMessage `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

func secs(d Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e9) }

// WriteJUnit writes the report as JUnit XML: fail is a failure, error an
// error, not-testable a skip (a failure under strict); a waived failure is
// a skip that says so, and an expired waiver a failure, so a CI test view
// agrees with the exit code.
func WriteJUnit(w io.Writer, r *Report) error {
	s := junitSuite{
		Name: "xmppcheck conformance: " + r.Policy.Name + " on " + r.Target.Name,
		Time: secs(r.Duration), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{
			{"schema", r.Schema}, {"policy.file", r.Policy.File}, {"target.name", r.Target.Name},
			{"target.kind", r.Target.Kind}, {"strict", fmt.Sprint(r.Strict)}, {"tool.version", r.Tool.Version},
		},
	}
	for _, res := range r.Results {
		c := junitCase{Name: res.Claim + ": " + res.Title, Classname: "xmppcheck." + res.Family, Time: secs(res.Duration)}
		body := evidenceText(res)
		switch {
		case res.Waiver != nil && res.Waiver.Expired:
			c.Failure = &junitMessage{Message: fmt.Sprintf("waiver expired %s (%s); verdict %s: %s", res.Waiver.Expires, res.Waiver.Reason, res.Verdict, res.Reason), Type: "waiver-expired", Body: body}
			s.Failures++
		case res.Waived():
			c.Skipped = &junitMessage{Message: fmt.Sprintf("waived until %s (%s); verdict %s: %s", res.Waiver.Expires, res.Waiver.Reason, res.Verdict, res.Reason)}
			s.Skipped++
		case res.Verdict == Fail:
			c.Failure = &junitMessage{Message: res.Reason, Type: "fail", Body: body}
			s.Failures++
		case res.Verdict == Error:
			c.Error = &junitMessage{Message: res.Reason, Type: "error", Body: body}
			s.Errors++
		case res.Verdict == NotTestable && r.Strict:
			c.Failure = &junitMessage{Message: "not testable (strict): " + res.Reason, Type: "not-testable", Body: body}
			s.Failures++
		case res.Verdict == NotTestable:
			c.Skipped = &junitMessage{Message: "not testable: " + res.Reason}
			s.Skipped++
		default:
			c.SystemOut = body
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	doc := junitSuites{Name: "xmppcheck", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped,
		Time: s.Time, Suites: []junitSuite{s}}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("report: write junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func evidenceText(res Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s: %q\n", sectionRef(res.Quote.Section), res.Quote.Text)
	for _, e := range res.Evidence {
		mark := "ok"
		if !e.OK {
			mark = "NOT OK"
		}
		fmt.Fprintf(&b, "[%s] %s: %s\n", mark, e.What, e.Observed)
		for _, h := range e.Hits {
			fmt.Fprintf(&b, "    %s:%d (%s): %s\n", h.File, h.Line, h.Form, h.Context)
		}
	}
	if res.Transcript != "" {
		b.WriteString("\n--- transcript ---\n")
		b.WriteString(res.Transcript)
	}
	return b.String()
}
