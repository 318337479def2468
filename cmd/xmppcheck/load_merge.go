package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/loadgen"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
	"github.com/xmppcheck/xmppcheck/loadgen/threshold"
)

// findMax runs the scenario at each rate of the ladder in turn until a
// threshold breaks (what loadgen/bench/servers.sh does by hand) and
// reports the highest passing rate. The outputs show the highest passing
// step (or the first, when none passed); its config lists the ladder.
func findMax(ctx context.Context, stdout, stderr io.Writer, cfg loadgen.Config, p *loadPlan, showBars bool) error {
	main := loadgen.MainMetric(cfg.Scenario)
	var exprs []string
	for _, t := range p.ths {
		exprs = append(exprs, t.Expr)
	}
	how := ""
	if p.defaultThs {
		how = " (the default thresholds)"
	}
	fmt.Fprintf(stdout, "find-max %s: %d users, %s per step, thresholds %s%s\n", cfg.Scenario, cfg.Users, cfg.Duration, strings.Join(exprs, " "), how)
	var (
		best, first         *stats.Result
		bestOut, firstOut   []threshold.Outcome
		bestRate, breakRate float64
		breakWhy            string
		ladder              []map[string]any
	)
	for i, rate := range p.rates {
		c := cfg
		c.Rate, c.Pacer = rate, nil
		c.RunID = cfg.RunID + uint64(2*i) // a fresh id per step: stanzas of a previous step count as foreign
		results := ""
		if p.results != "" {
			results = strings.TrimSuffix(p.results, ".jsonl") + fmt.Sprintf(".%g.jsonl", rate)
		}
		res, runErr := runOnce(ctx, stderr, c, results, showBars)
		if res == nil {
			return &exitError{code: exitUsage, err: runErr}
		}
		outcomes, _ := evaluate(res, p.ths)
		notDone := jobNotDone(res, p.maxErrors)
		if runErr != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("find-max interrupted at %g/s: %v", rate, runErr)}
		}
		if i == 0 {
			first, firstOut = res, outcomes
			if notDone != "" {
				writeOutputs(res, outcomes, notDone, p.jsonOut, p.csvOut, p.htmlOut)
				return usageErr("find-max: the first step (%g/s) could not do its job: %s", rate, notDone)
			}
		}
		verdict := "PASS"
		var why []string
		for _, o := range outcomes {
			if !o.Pass || o.Err != nil {
				why = append(why, fmt.Sprintf("%s (actual %s)", o.Expr, o.Actual))
			}
		}
		if notDone != "" {
			why = append(why, notDone)
		}
		if len(why) > 0 {
			verdict = "FAIL " + strings.Join(why, ", ")
		}
		var p50, p95, p99 string
		if m := res.Metrics[main]; m != nil {
			p50, p95, p99 = fmtUS(m.P50US), fmtUS(m.P95US), fmtUS(m.P99US)
		}
		fmt.Fprintf(stdout, "  %8g/s  completed %d  lost %d  errors %d  %s p50 %s p95 %s p99 %s  send_lag p99 %s  %s\n",
			rate, res.Counters[stats.Completed], res.Lost(), res.Counters[stats.Errors], main, p50, p95, p99, lagP99(res), verdict)
		ladder = append(ladder, map[string]any{"rate": rate, "pass": len(why) == 0, "p99_us": metricP99(res, main), "verdict": verdict})
		if len(why) > 0 {
			breakRate, breakWhy = rate, strings.Join(why, ", ")
			break
		}
		best, bestOut, bestRate = res, outcomes, rate
	}
	out, outcomes := best, bestOut
	if out == nil {
		out, outcomes = first, firstOut
	}
	out.Config["find_max"] = ladder
	if err := writeOutputs(out, outcomes, "", p.jsonOut, p.csvOut, p.htmlOut); err != nil {
		return err
	}
	switch {
	case best == nil:
		return failed(fmt.Errorf("find-max: no rate passed; the lowest, %g/s, broke: %s", p.rates[0], breakWhy))
	case breakRate == 0:
		fmt.Fprintf(stdout, "highest passing rate: ≥ %g/s (every step passed; the top of the ladder, not the knee)\n", bestRate)
	default:
		fmt.Fprintf(stdout, "highest passing rate: %g/s (%g/s broke: %s)\n", bestRate, breakRate, breakWhy)
	}
	return nil
}

func fmtUS(v int64) string { return (time.Duration(v) * time.Microsecond).String() }

func metricP99(res *stats.Result, name string) int64 {
	if m := res.Metrics[name]; m != nil {
		return m.P99US
	}
	return 0
}

func lagP99(res *stats.Result) string {
	if m := res.Metrics[loadgen.MetricLag]; m != nil {
		return fmtUS(m.P99US)
	}
	return "-"
}

// resultOutputs are the flags of 'load merge' and 'load report'.
type resultOutputs struct {
	jsonOut, csvOut, htmlOut string
	thresholds               []string
	maxErrorRatio            float64
}

func (o *resultOutputs) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.jsonOut, "json", "", "write the result as JSON")
	cmd.Flags().StringVar(&o.csvOut, "csv", "", "write the per-second series as CSV")
	cmd.Flags().StringVar(&o.htmlOut, "html", "", "write a self-contained HTML report")
	cmd.Flags().StringArrayVar(&o.thresholds, "threshold", nil, "pass/fail expression (see 'xmppcheck load --help'), repeatable")
	cmd.Flags().Float64Var(&o.maxErrorRatio, "max-error-ratio", 0.1, "above this share of failed operations the run did not do its job: exit 2")
}

// check validates the flags before any result is read or written.
func (o *resultOutputs) check() ([]threshold.Threshold, error) {
	var ths []threshold.Threshold
	for _, e := range o.thresholds {
		t, err := threshold.Parse(e)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		ths = append(ths, t)
	}
	if o.maxErrorRatio < 0 || o.maxErrorRatio > 1 {
		return nil, usageErr("--max-error-ratio %g: want 0 … 1", o.maxErrorRatio)
	}
	for _, x := range []struct{ flag, path string }{{"--json", o.jsonOut}, {"--csv", o.csvOut}, {"--html", o.htmlOut}} {
		if err := checkWritable(x.flag, x.path); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	return ths, nil
}

func metricsOf(res *stats.Result) []string {
	var mix map[string]float64
	if m, ok := res.Config["mix"].(map[string]any); ok {
		mix = map[string]float64{}
		for k, v := range m {
			if f, ok := v.(float64); ok {
				mix[k] = f
			}
		}
	}
	return loadgen.ScenarioMetrics(res.Scenario, mix)
}

func newLoadMergeCmd() *cobra.Command {
	var o resultOutputs
	var dir string
	cmd := &cobra.Command{
		Use:   "merge [RESULT.json...]",
		Short: "Combine the shard results of one run exactly (histograms bucket by bucket, counters summed)",
		Long: `merge combines the --json results (or --results streams) of the shards of one
run. Counters and errors add up, HDR histograms merge bucket by bucket
(percentiles are then recomputed, never averaged), per-second intervals of
the same second combine. Thresholds apply to the merged result.

Before merging it checks that the parts are the shards of one run: the same
run id (--run-id), scenario and settings; every shard index of the count
present exactly once (the same file twice is refused); measured windows that
overlap. What fails a check is refused (exit 2); shards whose windows start
or end apart by more than 250 ms or 1% of the window (no common --start-at)
merge with a warning, since the merged rate is computed over the union of
the windows.`,
		Example: `  xmppcheck load merge shard-0.json shard-1.json --json all.json --html all.html --threshold 'p99<50ms'
  xmppcheck load merge --dir /results/RUNID --json all.json   # every shard-*.json in the directory`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ths, err := o.check()
			if err != nil {
				return err
			}
			files := append([]string(nil), args...)
			if dir != "" {
				m, err := filepath.Glob(filepath.Join(dir, "shard-*.json"))
				if err != nil {
					return usageErr("--dir: %v", err)
				}
				sort.Strings(m)
				if len(m) == 0 {
					return usageErr("--dir %s: no shard-*.json", dir)
				}
				files = append(files, m...)
			}
			if len(files) == 0 {
				return usageErr("nothing to merge: give result files or --dir")
			}
			var parts []stats.Part
			var results []*stats.Result
			for _, p := range files {
				r, err := stats.ReadAny(p)
				if err != nil {
					return usageErr("%v", err)
				}
				parts = append(parts, stats.Part{Name: p, Result: r})
				results = append(results, r)
			}
			warnings, err := stats.CheckMerge(parts)
			if err != nil {
				return usageErr("refusing to merge: %v", err)
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			if err := threshold.CheckMetrics(ths, metricsOf(results[0])); err != nil {
				return usageErr("%v", err)
			}
			res, err := stats.Merge(results...)
			if err != nil {
				return usageErr("%v", err)
			}
			return finishLoad(cmd.OutOrStdout(), cmd.ErrOrStderr(), res, ths, o.jsonOut, o.csvOut, o.htmlOut, o.maxErrorRatio, nil)
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&dir, "dir", "", "merge every shard-*.json in this `DIR` (no shell glob needed)")
	return cmd
}

func newLoadReportCmd() *cobra.Command {
	var o resultOutputs
	cmd := &cobra.Command{
		Use:   "report RESULTS",
		Short: "Render a load result again: from a results stream (--results) or a --json result",
		Long: `report reads a results stream (written second by second during a run, also
one that was cut short) or a --json result and renders the text summary and
the --json, --csv and --html outputs again. Without --threshold the
thresholds recorded in the result are evaluated again; exit codes as for
'xmppcheck load'.`,
		Example: `  xmppcheck load report r.results.jsonl --html r.html --json r.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ths, err := o.check()
			if err != nil {
				return err
			}
			res, err := stats.ReadAny(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			if len(o.thresholds) == 0 {
				var exprs []string
				for _, v := range res.Thresholds {
					exprs = append(exprs, v.Expr)
				}
				if len(exprs) == 0 { // a stream: the run's config has them
					if l, ok := res.Config["thresholds"].([]any); ok {
						for _, e := range l {
							if s, ok := e.(string); ok {
								exprs = append(exprs, s)
							}
						}
					}
				}
				for _, e := range exprs {
					t, err := threshold.Parse(e)
					if err != nil {
						return usageErr("recorded threshold: %v", err)
					}
					ths = append(ths, t)
				}
			}
			if err := threshold.CheckMetrics(ths, metricsOf(res)); err != nil {
				return usageErr("%v", err)
			}
			return finishLoad(cmd.OutOrStdout(), cmd.ErrOrStderr(), res, ths, o.jsonOut, o.csvOut, o.htmlOut, o.maxErrorRatio, nil)
		},
	}
	o.flags(cmd)
	return cmd
}
