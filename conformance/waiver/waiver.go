// Package waiver reads waiver files: known failures of a conformance run,
// each accepted for a reason until an expiry date (`xmppcheck conform
// --waivers FILE`).
//
// A waived failure is reported as waived and does not fail the run; a
// waiver past its date fails the run until it is renewed or removed, so
// that no exception outlives its reason unnoticed.
package waiver

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/spec"
)

// File is a waiver file:
//
//	waivers:
//	  - claim: offline.retention
//	    reason: Prosody 0.12 never expires offline messages; upgrade tracked in OPS-123
//	    expires: 2027-03-31
type File struct {
	Waivers []Waiver `yaml:"waivers"`
}

// Waiver accepts the failure of one claim until the end of Expires (UTC).
type Waiver struct {
	Claim   spec.ClaimID `yaml:"claim"`
	Reason  string       `yaml:"reason"`
	Expires string       `yaml:"expires"`
}

// dateLayout is the expiry date's format.
const dateLayout = time.DateOnly

// Load reads and checks a waiver file, reporting every problem at once:
// unknown keys, unknown claim ids, a missing reason, a date not
// YYYY-MM-DD, two waivers for one claim.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("waiver: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("waiver: %s: %w", path, err)
	}
	var errs []error
	seen := map[spec.ClaimID]bool{}
	for i, w := range f.Waivers {
		if _, ok := spec.Lookup(w.Claim); !ok {
			errs = append(errs, fmt.Errorf("waivers[%d]: unknown claim id %q (did you mean %q?)", i, w.Claim, spec.Nearest(string(w.Claim))))
		}
		if w.Reason == "" {
			errs = append(errs, fmt.Errorf("waivers[%d] (%s): a reason is required", i, w.Claim))
		}
		if _, err := time.Parse(dateLayout, w.Expires); err != nil {
			errs = append(errs, fmt.Errorf("waivers[%d] (%s): expires %q is not a date YYYY-MM-DD", i, w.Claim, w.Expires))
		}
		if seen[w.Claim] {
			errs = append(errs, fmt.Errorf("waivers[%d]: a second waiver for %s", i, w.Claim))
		}
		seen[w.Claim] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("waiver: %s: %w", path, err)
	}
	return &f, nil
}

// Apply attaches each waiver to its claim's result, marks those whose
// date is before now's (UTC) as expired, and recomputes the summary and
// exit code. A waiver for a claim the run did not test is ignored.
func (f *File) Apply(r *report.Report, now time.Time) {
	today := now.UTC().Format(dateLayout)
	for _, w := range f.Waivers {
		for i := range r.Results {
			if r.Results[i].Claim == string(w.Claim) {
				r.Results[i].Waiver = &report.Waiver{Reason: w.Reason, Expires: w.Expires, Expired: w.Expires < today}
			}
		}
	}
	r.Finish()
}
