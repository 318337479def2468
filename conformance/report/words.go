package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// TargetWords describes the target for a reader who does not know
// xmppcheck's target kinds (a manager reading the audit report).
func TargetWords(t Target) string {
	switch t.Kind {
	case "embedded":
		return "xmppcheck's own reference server, started inside xmppcheck for this run (a model of a compliant server, not a deployment)"
	case "remote":
		if t.Domain != "" {
			return fmt.Sprintf("the live XMPP service of %s, reached over the network at %s", t.Domain, t.Name)
		}
		return "the live XMPP server at " + t.Name
	case "container":
		if t.Description != "" {
			return fmt.Sprintf("%s, run in a container on the test machine (target %s)", strings.TrimSuffix(t.Description, "."), t.Name)
		}
		return fmt.Sprintf("the server of target %s, run in a container on the test machine", t.Name)
	}
	if t.Description != "" {
		return t.Description
	}
	return t.Name
}

// concern orders results for a reader: failing first, then errors,
// not-testable, waived, and passes last.
func concern(r *Report, res Result) int {
	switch {
	case res.Failing(r.Strict):
		return 0
	case res.Verdict == Error:
		return 1
	case res.Waived():
		return 3
	case res.Verdict == NotTestable:
		return 2
	}
	return 4
}

// byConcern returns the results, failures first (stable within a class:
// catalogue order).
func byConcern(r *Report) []Result {
	out := slices.Clone(r.Results)
	sort.SliceStable(out, func(i, j int) bool { return concern(r, out[i]) < concern(r, out[j]) })
	return out
}

// paramList formats a claim's parameters "max_age = 7d, …" in key order.
func paramList(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + " = " + p[k])
	}
	return b.String()
}

// verdictLabel is the verdict as a reader should see it: "fail (waived
// until 2027-03-31)", "not-testable (strict: failing)".
func verdictLabel(r *Report, res Result) string {
	v := string(res.Verdict)
	switch {
	case res.Waiver != nil && res.Waiver.Expired:
		v += " (waiver expired " + res.Waiver.Expires + ")"
	case res.Waived():
		v += " (waived until " + res.Waiver.Expires + ")"
	case res.Failing(r.Strict) && res.Verdict == NotTestable:
		v += " (strict: failing)"
	}
	return v
}
