package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/loadgen/stats"
	"github.com/xmppcheck/xmppcheck/loadgen/threshold"
)

// Field is one line of a report header.
type Field struct{ Name, Value string }

// Header describes the run a result comes from: target, scenario, users,
// rate, duration, run id (and schedule, shards, start time when known), so
// that two reports can be compared at a glance.
func Header(res *stats.Result) []Field {
	c := res.Config
	get := func(k string) string {
		v, ok := c[k]
		if !ok || v == nil {
			return ""
		}
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64)
		case string:
			return x
		}
		return fmt.Sprint(v)
	}
	target := get("target")
	if s := get("server"); s != "" && s != target {
		if target != "" {
			target += " (" + s + ")"
		} else {
			target = s
		}
	}
	if target == "" {
		target = "unknown"
	}
	rate := get("rate") + " ops/s"
	if s := get("schedule"); strings.Contains(s, ",") || strings.Contains(s, "-") {
		rate = "mean " + rate + " (schedule " + s + ")"
	}
	f := []Field{
		{"target", target},
		{"scenario", res.Scenario},
		{"users", get("users")},
		{"rate", rate},
		{"duration", get("duration")},
		{"run id", get("run_id")},
		{"shards", fmt.Sprintf("%d result(s) of %s", len(res.Shards), orDash(get("shards")))},
	}
	if !res.Started.IsZero() {
		f = append(f, Field{"started", res.Started.UTC().Format(time.RFC3339)})
	}
	f = append(f, Field{"measured window", fmt.Sprintf("%.1f s", res.Window.Seconds())})
	return f
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Verdict is the report's banner: ERROR when the run could not do its job
// (notDone says why), FAIL when a threshold failed, PASS when every
// threshold held, and MEASURED when none was given.
func Verdict(outcomes []threshold.Outcome, notDone string) (word, detail string) {
	failed := 0
	for _, o := range outcomes {
		if !o.Pass || o.Err != nil {
			failed++
		}
	}
	switch {
	case notDone != "":
		return "ERROR", "the run could not do its job: " + notDone + " (thresholds not judged)"
	case failed > 0:
		return "FAIL", fmt.Sprintf("%d of %d thresholds failed", failed, len(outcomes))
	case len(outcomes) > 0:
		return "PASS", fmt.Sprintf("all %d thresholds hold", len(outcomes))
	}
	return "MEASURED", "no threshold given: nothing was judged"
}

// Saturation returns a warning when the generator's own send lag, not
// the server, explains the main metric's latency: operations started so
// late that the lag is at least half the main p99 (and above 1 ms), or
// more than 5% of operations were late starts. "" otherwise.
func Saturation(res *stats.Result, main string) string {
	lag, m := res.Metrics["send_lag"], res.Metrics[main]
	var why []string
	if lag != nil && m != nil && m.Count > 0 && lag.P99US > 1000 && 2*lag.P99US >= m.P99US {
		why = append(why, fmt.Sprintf("its send lag p99 %s is %.0f%% of the %s p99 %s", us(lag.P99US), 100*float64(lag.P99US)/float64(max(m.P99US, 1)), main, us(m.P99US)))
	}
	if s := res.Counters[stats.Scheduled]; s > 0 {
		if late := res.Counters[stats.LateStarts]; float64(late) > 0.05*float64(s) {
			why = append(why, fmt.Sprintf("%.1f%% of operations started late", 100*float64(late)/float64(s)))
		}
	}
	if len(why) == 0 {
		return ""
	}
	return "the load generator is saturated: " + strings.Join(why, "; ") +
		". The latency then measures the generator as much as the server: lower the rate per process, add shards, or try --pace-tick."
}

// Legend explains the report's marks and the counters that are not
// self-explanatory.
var Legend = []Field{
	{"*", "the scenario's main metric: thresholds without a metric name (p99<50ms) apply to it"},
	{"send_lag", "how late the generator started each operation after its schedule; it is included in every latency (open model), so a large send_lag is the generator's delay, not the server's"},
	{"late starts", "operations that started later than --late after their schedule"},
	{"lost", "expected deliveries that never arrived (before the drain ended)"},
	{"foreign", "stanzas received that carry another run's id or no marker; ignored, not measured"},
	{"setup_login", "logins of the long-lived sessions before the measured phase"},
}

func sortedErrorKinds(res *stats.Result) []string {
	kinds := make([]string, 0, len(res.Errors))
	for k := range res.Errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		return res.Errors[kinds[i]] > res.Errors[kinds[j]] || (res.Errors[kinds[i]] == res.Errors[kinds[j]] && kinds[i] < kinds[j])
	})
	return kinds
}
