package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Schema is the value of the schema field of every report this package
// writes. A change that removes or renames a field, or changes a field's
// meaning, gets a new version; fields may be added within a version.
const Schema = "xmppcheck.report/v1"

// Verdict is the outcome of testing one claim.
type Verdict string

// Verdicts (docs/CLAIMS.md, the verdict rule).
const (
	// Pass: the server kept the promise, shown by the evidence.
	Pass Verdict = "pass"
	// Fail: the server broke the promise; the reason says how.
	Fail Verdict = "fail"
	// NotTestable: the target lacks a capability the claim needs (or the
	// server lacks the feature the claim is about); never a pass.
	NotTestable Verdict = "not-testable"
	// Error: the harness could not finish (unreachable server, timeout,
	// an evidence scan whose positive control failed).
	Error Verdict = "error"
)

// Verdicts lists every verdict in report order.
func Verdicts() []Verdict { return []Verdict{Pass, Fail, NotTestable, Error} }

// Valid reports whether v is one of the four verdicts.
func (v Verdict) Valid() bool {
	switch v {
	case Pass, Fail, NotTestable, Error:
		return true
	}
	return false
}

// Report is a whole conformance run.
type Report struct {
	Schema   string    `json:"schema"`
	Tool     Tool      `json:"tool"`
	Policy   Policy    `json:"policy"`
	Target   Target    `json:"target"`
	Started  time.Time `json:"started"`
	Duration Duration  `json:"duration_ms"`
	// Strict: not-testable counts as a failure.
	Strict  bool     `json:"strict"`
	Summary Summary  `json:"summary"`
	Results []Result `json:"results"`
}

// Tool names the program that wrote the report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Policy identifies the policy file the claims come from.
type Policy struct {
	Name    string `json:"name"`
	File    string `json:"file"`
	Updated string `json:"updated,omitempty"`
	Source  string `json:"source,omitempty"`
}

// Target describes the server under test.
type Target struct {
	Name string `json:"name"`
	// Kind is embedded, container or remote.
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
	Domain      string `json:"domain,omitempty"`
	// Capabilities the target offers (network, accounts, evidence, clock).
	Capabilities []string `json:"capabilities"`
	// Lacks gives, for each capability the target does not offer, why.
	Lacks map[string]string `json:"lacks,omitempty"`
}

// Summary counts verdicts.
type Summary struct {
	Pass        int `json:"pass"`
	Fail        int `json:"fail"`
	NotTestable int `json:"not-testable"`
	Error       int `json:"error"`
	// Waived counts failing verdicts accepted by a waiver (within the
	// counts above).
	Waived int `json:"waived,omitempty"`
	// ExitCode is what `xmppcheck conform` exits with for this report.
	ExitCode int `json:"exit_code"`
}

// Quote is a sentence of the policy's source document.
type Quote struct {
	Section string `json:"section"`
	Text    string `json:"quote"`
}

// Result is the verdict on one claim with what it rests on.
type Result struct {
	Claim  string            `json:"claim"`
	Title  string            `json:"title"`
	Family string            `json:"family"`
	Labels []string          `json:"labels"`
	Params map[string]string `json:"params,omitempty"`
	Quote  Quote             `json:"quote"`
	Also   []Quote           `json:"also,omitempty"`
	// Passes says what a passing server does.
	Passes  string  `json:"passes"`
	Verdict Verdict `json:"verdict"`
	// Reason explains every verdict other than pass (and may explain a pass).
	Reason   string     `json:"reason,omitempty"`
	Evidence []Evidence `json:"evidence"`
	// Transcript is the protocol exchange the verdict rests on, with
	// passwords and SASL payloads redacted.
	Transcript string   `json:"transcript,omitempty"`
	Duration   Duration `json:"duration_ms"`
	// Waiver is the waiver file's entry for this claim, if any.
	Waiver *Waiver `json:"waiver,omitempty"`
}

// Waiver is a known failure accepted until a date (--waivers FILE).
type Waiver struct {
	Reason  string `json:"reason"`
	Expires string `json:"expires"` // YYYY-MM-DD: the last day it holds
	// Expired: the date has passed; the waiver no longer holds, and the
	// run fails until it is renewed or removed.
	Expired bool `json:"expired,omitempty"`
}

// Waived reports whether a failing verdict is accepted by a waiver that
// has not expired.
func (r Result) Waived() bool {
	return r.Waiver != nil && !r.Waiver.Expired && r.Verdict != Pass && r.Verdict != Error
}

// Evidence is one observation a verdict rests on.
type Evidence struct {
	// What was checked ("STARTTLS handshake at TLS 1.0").
	What string `json:"what"`
	// Observed is what happened ("refused: tls: protocol version not supported").
	Observed string `json:"observed"`
	// OK says whether the observation is what a compliant server shows.
	OK bool `json:"ok"`
	// Hits are evidence-scan matches (file, line, masked context).
	Hits []Hit `json:"hits,omitempty"`
}

// Hit is one match of an evidence scan.
type Hit struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Offset  int    `json:"offset"`
	Form    string `json:"form"`
	Context string `json:"context"`
}

// Duration is a time.Duration written as integer milliseconds.
type Duration time.Duration

// MarshalJSON writes milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprint(time.Duration(d).Milliseconds())), nil
}

// UnmarshalJSON reads milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms int64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*d = Duration(time.Duration(ms) * time.Millisecond)
	return nil
}

// Failing reports whether the result makes the run fail: a fail, or a
// not-testable under strict.
func (r Result) Failing(strict bool) bool {
	if r.Waiver != nil && r.Waiver.Expired {
		return true // an expired waiver fails the run, whatever the verdict
	}
	return !r.Waived() && (r.Verdict == Fail || strict && r.Verdict == NotTestable)
}

// Exit codes of a run.
const (
	ExitPass   = 0
	ExitFailed = 1
	ExitError  = 2
)

// Finish fills in the summary and exit code: 2 when any claim ended in
// error (the run is incomplete), else 1 when any claim failed (or, under
// strict, was not testable), else 0.
func (r *Report) Finish() {
	r.Schema = Schema
	s := Summary{}
	failing := false
	for _, res := range r.Results {
		switch res.Verdict {
		case Pass:
			s.Pass++
		case Fail:
			s.Fail++
		case NotTestable:
			s.NotTestable++
		case Error:
			s.Error++
		}
		if res.Waived() {
			s.Waived++
		}
		failing = failing || res.Failing(r.Strict)
	}
	switch {
	case s.Error > 0:
		s.ExitCode = ExitError
	case failing:
		s.ExitCode = ExitFailed
	default:
		s.ExitCode = ExitPass
	}
	r.Summary = s
}

// ErrSchema is returned by Read for a document that is not a v1 report.
var ErrSchema = errors.New("report: not an xmppcheck.report/v1 document")

// Read decodes a JSON report and checks its schema and verdicts.
func Read(rd io.Reader) (*Report, error) {
	var r Report
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("report: read: %w", err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%w: schema %q", ErrSchema, r.Schema)
	}
	for i, res := range r.Results {
		if !res.Verdict.Valid() {
			return nil, fmt.Errorf("%w: result %d (%s): unknown verdict %q", ErrSchema, i, res.Claim, res.Verdict)
		}
	}
	return &r, nil
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report: write json: %w", err)
	}
	return nil
}
