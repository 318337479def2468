package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xmppcheck/xmppcheck/loadgen/stats"
	"github.com/xmppcheck/xmppcheck/loadgen/threshold"
)

// MetricOrder is the order metrics are shown in.
var MetricOrder = []string{"message", "presence", "offline_delivery", "login", "connect", "tls", "auth", "bind", "setup_login", "send_lag"}

func us(v int64) string { return fmtDur(time.Duration(v) * time.Microsecond) }

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
}

// Text writes a human summary of res; outcomes (may be nil) are the
// threshold checks, notDone (may be "") why the run could not do its job.
func Text(w io.Writer, res *stats.Result, mainMetric string, outcomes []threshold.Outcome, notDone string) error {
	c := res.Counters
	var head []string
	for _, f := range Header(res) {
		head = append(head, f.Name+" "+f.Value)
	}
	fmt.Fprintf(w, "xmppcheck load: %s\n", strings.Join(head, ", "))
	fmt.Fprintf(w, "scenario %s", res.Scenario)
	if n := len(res.Shards); n > 1 || (n == 1 && res.Shards[0].Of > 1) {
		fmt.Fprintf(w, " (%d shard results)", n)
	}
	fmt.Fprintf(w, ", window %.1fs, run %.1fs\n", res.Window.Seconds(), res.Ended.Sub(res.Started).Seconds())
	fmt.Fprintf(w, "  scheduled %d  sent %d  completed %d of %d expected  lost %d  late starts %d  sessions %d  foreign %d\n",
		c[stats.Scheduled], c[stats.Sent], c[stats.Completed], expected(res), res.Lost(), c[stats.LateStarts], c[stats.Sessions], c[stats.Foreign])
	fmt.Fprintf(w, "  rate %.1f/s completed   errors %d (%.3g%% incl. lost)\n", res.Rate(), c[stats.Errors], 100*res.ErrorRatio())

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tmetric\tcount\tmin\tp50\tp90\tp95\tp99\tp99.9\tmax\tmean\t")
	for _, name := range orderedMetrics(res) {
		m := res.Metrics[name]
		mark := ""
		if name == mainMetric {
			mark = "*"
		}
		fmt.Fprintf(tw, "\t%s%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", mark, name, m.Count, us(m.MinUS), us(m.P50US), us(m.P90US), us(p95(m)), us(m.P99US), us(m.P999US), us(m.MaxUS), us(int64(m.MeanUS)))
	}
	tw.Flush()

	if len(res.Errors) > 0 {
		fmt.Fprintln(w, "  errors by kind:")
		for _, k := range sortedErrorKinds(res) {
			fmt.Fprintf(w, "    %-40s %d\n", k, res.Errors[k])
		}
	}
	for _, sh := range res.Shards {
		fmt.Fprintf(w, "  shard %d/%d %s: %d users, rate %.1f/s, CPU %.2fs", sh.Index, sh.Of, sh.Host, sh.Users, sh.Rate, sh.CPUSeconds)
		if done := c[stats.Completed]; sh.CPUSeconds > 0 && len(res.Shards) == 1 {
			fmt.Fprintf(w, " (%.0f completed ops per CPU-second)", float64(done)/sh.CPUSeconds)
		}
		if sh.MemPerUser > 0 || sh.RSSPerUser > 0 {
			fmt.Fprintf(w, ", memory per session: heap+stack %s, RSS %s", bytesStr(sh.MemPerUser), bytesStr(sh.RSSPerUser))
		}
		if sh.CPUIncludesSUT {
			fmt.Fprint(w, " [CPU and memory include the in-process server]")
		}
		fmt.Fprintf(w, ", fd limit %d\n", sh.FDLimit)
		for _, n := range sh.Notes {
			fmt.Fprintf(w, "    note: %s\n", n)
		}
	}
	for _, o := range outcomes {
		verdict := "PASS"
		switch {
		case o.Err != nil:
			verdict = "FAIL (" + o.Err.Error() + ")"
		case !o.Pass:
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  threshold %-22s actual %-12s %s\n", o.Expr, o.Actual, verdict)
	}
	if s := Saturation(res, mainMetric); s != "" {
		fmt.Fprintf(w, "  WARNING: %s\n", s)
	}
	if res.Incomplete {
		fmt.Fprintln(w, "  WARNING: incomplete result: the results stream ends before the run did")
	}
	fmt.Fprint(w, "  legend:")
	for _, f := range Legend[:2] {
		fmt.Fprintf(w, " %s = %s;", f.Name, strings.SplitN(f.Value, ";", 2)[0])
	}
	fmt.Fprintln(w, " foreign = stanzas of other runs, ignored")
	word, detail := Verdict(outcomes, notDone)
	fmt.Fprintf(w, "RESULT: %s — %s\n", word, detail)
	return nil
}

// p95 is the metric's 95th percentile (recomputed for results written
// before the field existed).
func p95(m *stats.Metric) int64 {
	if m.P95US == 0 && m.Count > 0 {
		return m.Quantile(95)
	}
	return m.P95US
}

func expected(res *stats.Result) int64 {
	if e := res.Counters[stats.Expected]; e > 0 {
		return e
	}
	return res.Counters[stats.Sent]
}

func orderedMetrics(res *stats.Result) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range MetricOrder {
		if m := res.Metrics[n]; m != nil && m.Count > 0 {
			out = append(out, n)
			seen[n] = true
		}
	}
	var rest []string
	for n, m := range res.Metrics {
		if !seen[n] && m.Count > 0 {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func bytesStr(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
