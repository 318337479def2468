// Package threshold parses and checks the pass/fail expressions of
// `xmppcheck load --threshold` against a load result (package stats), so
// that a CI pipeline can fail a run on latency, errors or throughput.
//
// Grammar: [METRIC.]STAT OP VALUE[UNIT]
//
//	p99<50ms            the scenario's main latency metric
//	login.p99.9<=1s     a named metric (message, presence, offline_delivery,
//	                    login, connect, tls, auth, bind, setup_login, send_lag)
//	errors<0.1%         errors (plus lost deliveries) per expected operation;
//	                    without % it is a count
//	lost==0  late<1%    lost deliveries; late starts (count or % of scheduled)
//	rate>=9000          completed operations per second over the window
//
// STAT is pNN or pNN.N (percentile), min, mean, max, errors, lost, late or
// rate; OP is <, <=, >, >=, == or !=; UNIT for latencies is us, ms, s (or
// any time.ParseDuration unit) and is required: a bare "p99<50" is an
// error, never silently milliseconds.
package threshold

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("threshold: bad expression")

// Threshold is one parsed expression.
type Threshold struct {
	Expr    string
	Metric  string  // "" = the scenario's main metric
	Stat    string  // p99, p99.9, min, mean, max, errors, lost, late, rate
	Pct     float64 // the percentile for pNN stats
	Op      string
	Value   float64 // microseconds for latencies, a count, a ratio (0..1) or ops/s
	Percent bool    // Value came with % (errors, late)
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"}

// Parse parses one expression.
func Parse(expr string) (Threshold, error) {
	t := Threshold{Expr: expr}
	s := strings.ReplaceAll(expr, " ", "")
	var lhs, rhs string
	for _, op := range ops {
		if i := strings.Index(s, op); i > 0 {
			lhs, rhs, t.Op = s[:i], s[i+len(op):], op
			break
		}
	}
	if t.Op == "" || rhs == "" {
		return t, fmt.Errorf("%w: %q: want STAT OP VALUE, e.g. p99<50ms", ErrSyntax, expr)
	}
	stat := lhs
	if i := strings.IndexByte(lhs, '.'); i > 0 && !isPercentile(lhs) {
		t.Metric, stat = lhs[:i], lhs[i+1:]
	}
	t.Stat = stat
	switch {
	case isPercentile(stat):
		p, err := strconv.ParseFloat(stat[1:], 64)
		if err != nil || p <= 0 || p > 100 {
			return t, fmt.Errorf("%w: %q: percentile %q", ErrSyntax, expr, stat)
		}
		t.Pct = p
		fallthrough
	case stat == "min", stat == "mean", stat == "max":
		d, err := parseLatency(rhs)
		if err != nil {
			return t, fmt.Errorf("%w: %q: %v", ErrSyntax, expr, err)
		}
		t.Value = float64(d) / float64(time.Microsecond)
	case stat == "errors", stat == "late", stat == "lost", stat == "rate":
		if t.Metric != "" {
			return t, fmt.Errorf("%w: %q: %s applies to the whole run, not to a metric", ErrSyntax, expr, stat)
		}
		v := rhs
		if strings.HasSuffix(v, "%") {
			if stat == "rate" || stat == "lost" {
				return t, fmt.Errorf("%w: %q: %s takes no %%", ErrSyntax, expr, stat)
			}
			t.Percent = true
			v = strings.TrimSuffix(v, "%")
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return t, fmt.Errorf("%w: %q: value %q", ErrSyntax, expr, rhs)
		}
		if t.Percent {
			f /= 100
		}
		t.Value = f
	default:
		return t, fmt.Errorf("%w: %q: unknown statistic %q (pNN, min, mean, max, errors, lost, late, rate)", ErrSyntax, expr, stat)
	}
	return t, nil
}

// ErrUnknownMetric is wrapped by CheckMetrics for a threshold on a metric
// the scenario does not measure.
var ErrUnknownMetric = errors.New("threshold: unknown metric")

// CheckMetrics checks, before a run, that every latency threshold names a
// metric the scenario measures (known, in report order); the error lists
// them, so a typo is caught before anything is sent.
func CheckMetrics(ths []Threshold, known []string) error {
	for _, t := range ths {
		if t.Metric == "" {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || k == t.Metric
		}
		if !ok {
			return fmt.Errorf("%w: %q: %q is not measured by this scenario; its metrics: %s", ErrUnknownMetric, t.Expr, t.Metric, strings.Join(known, ", "))
		}
	}
	return nil
}

func isPercentile(s string) bool {
	if len(s) < 2 || s[0] != 'p' {
		return false
	}
	_, err := strconv.ParseFloat(s[1:], 64)
	return err == nil
}

func parseLatency(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("latency %q has no unit: write e.g. %sms, %sus or %ss", s, s, s, s)
	}
	return 0, fmt.Errorf("latency %q: want a duration like 50ms", s)
}

// Outcome is the check of one threshold against a result.
type Outcome struct {
	Threshold
	Actual string // the measured value, formatted
	Pass   bool
	Err    error // the metric is missing from the result
}

// Check evaluates t against res; mainMetric names the scenario's metric.
func (t Threshold) Check(res *stats.Result, mainMetric string) Outcome {
	o := Outcome{Threshold: t}
	var actual float64
	switch t.Stat {
	case "errors":
		if t.Percent {
			actual = res.ErrorRatio()
			o.Actual = fmt.Sprintf("%.4g%%", actual*100)
		} else {
			actual = float64(res.Counters[stats.Errors] + res.Lost())
			o.Actual = fmt.Sprintf("%.0f", actual)
		}
	case "lost":
		actual = float64(res.Lost())
		o.Actual = fmt.Sprintf("%.0f", actual)
	case "late":
		actual = float64(res.Counters[stats.LateStarts])
		if t.Percent {
			if s := res.Counters[stats.Scheduled]; s > 0 {
				actual /= float64(s)
			}
			o.Actual = fmt.Sprintf("%.4g%%", actual*100)
		} else {
			o.Actual = fmt.Sprintf("%.0f", actual)
		}
	case "rate":
		actual = res.Rate()
		o.Actual = fmt.Sprintf("%.1f/s", actual)
	default:
		name := t.Metric
		if name == "" {
			name = mainMetric
		}
		m := res.Metrics[name]
		if m == nil || m.Count == 0 {
			o.Err = fmt.Errorf("threshold: %q: no %s measurements in the result", t.Expr, name)
			o.Actual = "n/a"
			return o
		}
		switch t.Stat {
		case "min":
			actual = float64(m.MinUS)
		case "mean":
			actual = m.MeanUS
		case "max":
			actual = float64(m.MaxUS)
		default:
			actual = float64(m.Quantile(t.Pct))
		}
		o.Actual = (time.Duration(actual) * time.Microsecond).String()
	}
	o.Pass = compare(actual, t.Op, t.Value)
	return o
}

func compare(a float64, op string, b float64) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "==":
		return a == b
	case "!=":
		return a != b
	}
	return false
}
