package stats

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Part is one input of a merge, named for messages.
type Part struct {
	Name   string
	Result *Result
}

// configKeysPerShard are config entries that may differ between the shards
// of one run: a start time given relative to each shard's own clock
// (the windows check judges the skew it makes).
var configKeysPerShard = map[string]bool{"start_at": true}

// CheckMerge says whether parts are the shards of one run, before Merge
// adds them up: every part has the same format, scenario, run id and
// configuration; the shards' counts agree, no shard index appears twice and
// none is missing; the measured windows overlap. Anything else is an error
// wrapping ErrMismatch. Warnings name what merges but distorts the rates:
// shards whose windows start or end far apart (no common --start-at).
func CheckMerge(parts []Part) (warnings []string, err error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: nothing to merge", ErrMismatch)
	}
	first := parts[0]
	fail := func(format string, args ...any) ([]string, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrMismatch}, args...)...)
	}
	runID := func(r *Result) string { s, _ := r.Config["run_id"].(string); return s }
	if runID(first.Result) == "" {
		return fail("%s has no run id (written by an older xmppcheck?)", first.Name)
	}
	seen := map[int]string{}
	of := 0
	for _, p := range parts {
		r := p.Result
		if r.Format != first.Result.Format || r.Scenario != first.Result.Scenario {
			return fail("%s is %s/%s, %s is %s/%s", p.Name, r.Format, r.Scenario, first.Name, first.Result.Format, first.Result.Scenario)
		}
		if runID(r) != runID(first.Result) {
			return fail("%s is run %q, %s is run %q: give every shard the same --run-id", p.Name, runID(r), first.Name, runID(first.Result))
		}
		if d := configDiff(first.Result.Config, r.Config); d != "" {
			return fail("%s and %s were run with different settings: %s", first.Name, p.Name, d)
		}
		if r.Incomplete {
			return fail("%s is incomplete (its run ended early); re-run the shard", p.Name)
		}
		if len(r.Shards) == 0 {
			return fail("%s describes no shard", p.Name)
		}
		for _, sh := range r.Shards {
			if of == 0 {
				of = sh.Of
			}
			if sh.Of != of {
				return fail("%s holds shard %d/%d, other parts are of %d shards", p.Name, sh.Index, sh.Of, of)
			}
			if prev, dup := seen[sh.Index]; dup {
				return fail("shard %d/%d is in both %s and %s (the same result given twice?)", sh.Index, of, prev, p.Name)
			}
			seen[sh.Index] = p.Name
		}
	}
	var missing []string
	for i := 0; i < of; i++ {
		if _, ok := seen[i]; !ok {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 {
		return fail("shards %s of %d are missing", strings.Join(missing, ", "), of)
	}
	// Windows: they must overlap; far-apart starts or ends distort the
	// merged rate (computed over the union of the windows).
	latestStart, earliestEnd := first.Result.Window.Start, first.Result.Window.End
	earliestStart, latestEnd := latestStart, earliestEnd
	shortest := first.Result.Window.End.Sub(first.Result.Window.Start)
	for _, p := range parts[1:] {
		w := p.Result.Window
		if w.Start.After(latestStart) {
			latestStart = w.Start
		}
		if w.Start.Before(earliestStart) {
			earliestStart = w.Start
		}
		if w.End.Before(earliestEnd) {
			earliestEnd = w.End
		}
		if w.End.After(latestEnd) {
			latestEnd = w.End
		}
		shortest = min(shortest, w.End.Sub(w.Start))
	}
	if !latestStart.Before(earliestEnd) {
		return fail("the shards' measured windows do not overlap (one ended at %s, another started at %s): not one run", earliestEnd.Format(time.RFC3339Nano), latestStart.Format(time.RFC3339Nano))
	}
	tol := max(SkewTolerance, shortest/100)
	if d := latestStart.Sub(earliestStart); d > tol {
		warnings = append(warnings, fmt.Sprintf("the shards' windows start %s apart (tolerance %s): the merged rate, over the union of the windows, understates the load; start shards with one --start-at", d.Round(time.Millisecond), tol))
	}
	if d := latestEnd.Sub(earliestEnd); d > tol {
		warnings = append(warnings, fmt.Sprintf("the shards' windows end %s apart (tolerance %s)", d.Round(time.Millisecond), tol))
	}
	return warnings, nil
}

// SkewTolerance is the smallest start or end skew between shards that
// CheckMerge warns about (more for long windows: 1% of the shortest).
const SkewTolerance = 250 * time.Millisecond

// configDiff names the config entries in which a and b differ ("" if none).
func configDiff(a, b map[string]any) string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var diffs []string
	for k := range keys {
		if configKeysPerShard[k] {
			continue
		}
		ja, _ := json.Marshal(a[k])
		jb, _ := json.Marshal(b[k])
		if string(ja) != string(jb) {
			diffs = append(diffs, fmt.Sprintf("%s %s vs %s", k, ja, jb))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}
