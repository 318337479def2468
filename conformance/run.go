package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// Config is one conformance run.
type Config struct {
	Policy *spec.Policy
	Target target.Target
	// Claims selects claims by id, glob ("tls.*") or label ("XEP-0077",
	// "privacy"); empty means every claim of the policy.
	Claims []string
	// Timeout bounds each claim (default 60s).
	Timeout time.Duration
	// StartTimeout bounds starting the target, image builds included
	// (default DefaultStartTimeout). The start runs before the first
	// claim and counts against no claim's Timeout.
	StartTimeout time.Duration
	// IOTimeout bounds each network read or write (default 10s).
	IOTimeout time.Duration
	// Strict makes not-testable a failure.
	Strict bool
	// Progress receives Ginkgo's own progress output (nil discards it).
	Progress io.Writer
	// Verbose makes Ginkgo's output verbose.
	Verbose bool
	// Version is the tool version written into the report.
	Version string
	// DryRun lists the specs without running them (see SpecList).
	DryRun bool
	// OnResult, when set, is called after each claim's verdict with the
	// number of claims done and selected (issue 12: a progress line per
	// claim).
	OnResult func(done, total int, res report.Result)
}

// DefaultStartTimeout is the default Config.StartTimeout: a cold image
// build of a server takes minutes.
const DefaultStartTimeout = 20 * time.Minute

// ErrUsage is wrapped by errors in a Config (unknown claim, empty
// selection).
var ErrUsage = errors.New("conformance: usage")

// ErrRanTwice is returned by Run after the first call: Ginkgo runs one
// suite per process.
var ErrRanTwice = errors.New("conformance: the suite runs once per process")

// Select resolves selectors (ids, globs, labels) against the policy's
// claims, in policy order.
func Select(pol *spec.Policy, selectors []string) ([]spec.ClaimID, error) {
	var ids []spec.ClaimID
	if len(selectors) == 0 {
		for _, c := range pol.Claims {
			ids = append(ids, c.ID)
		}
		return ids, nil
	}
	picked := map[spec.ClaimID]bool{}
	for _, raw := range selectors {
		for _, sel := range strings.Split(raw, ",") {
			sel = strings.TrimSpace(sel)
			if sel == "" {
				continue
			}
			n := 0
			for _, c := range pol.Claims {
				k := c.Kind()
				match := string(c.ID) == sel || slices.Contains(k.Labels(), sel)
				if !match && strings.ContainsAny(sel, "*?[") {
					match, _ = path.Match(sel, string(c.ID))
				}
				if match {
					picked[c.ID] = true
					n++
				}
			}
			if n == 0 {
				if _, known := spec.Lookup(spec.ClaimID(sel)); known {
					return nil, fmt.Errorf("%w: the policy makes no claim %q", ErrUsage, sel)
				}
				return nil, fmt.Errorf("%w: %q matches no claim id, glob or label of the policy (did you mean %q?)", ErrUsage, sel, spec.Nearest(sel))
			}
		}
	}
	for _, c := range pol.Claims {
		if picked[c.ID] {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// run is the state of the one run of this process, read by the specs.
type run struct {
	cfg       Config
	selected  map[spec.ClaimID]bool
	mu        sync.Mutex
	results   map[spec.ClaimID]report.Result
	specs     []string // the selected specs (SpecList lines)
	allSpecs  []string // every spec of the suite
	started   bool
	startErr  error
	specsSeen int
}

var (
	runMu   sync.Mutex
	current *run
	ranOnce bool
)

func (r *run) record(res report.Result) {
	r.mu.Lock()
	r.results[spec.ClaimID(res.Claim)] = res
	done, total := len(r.results), len(r.selected)
	r.mu.Unlock()
	if r.cfg.OnResult != nil {
		r.cfg.OnResult(done, total, res)
	}
}

// fakeT is the GinkgoTestingT of an in-process run.
type fakeT struct{ failed bool }

func (t *fakeT) Fail() { t.failed = true }

// Run runs the suite in-process against cfg.Target and returns the report.
// It may be called once per process (Ginkgo's rule).
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	r, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return r.execute(ctx, &fakeT{})
}

func prepare(cfg Config) (*run, error) {
	if cfg.Policy == nil || cfg.Target == nil && !cfg.DryRun {
		return nil, fmt.Errorf("%w: a policy and a target are required", ErrUsage)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = 10 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	cfg.IOTimeout = min(cfg.IOTimeout, cfg.Timeout)
	ids, err := Select(cfg.Policy, cfg.Claims)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no claim selected", ErrUsage)
	}
	r := &run{cfg: cfg, selected: map[spec.ClaimID]bool{}, results: map[spec.ClaimID]report.Result{}}
	for _, id := range ids {
		r.selected[id] = true
	}
	return r, nil
}

func (r *run) labelFilter() string {
	var parts []string
	for _, c := range r.cfg.Policy.Claims {
		if r.selected[c.ID] {
			parts = append(parts, string(c.ID))
		}
	}
	return strings.Join(parts, " || ")
}

// execute runs Ginkgo with t as its testing.T.
func (r *run) execute(ctx context.Context, t ginkgo.GinkgoTestingT) (*report.Report, error) {
	runMu.Lock()
	if ranOnce {
		runMu.Unlock()
		return nil, ErrRanTwice
	}
	ranOnce, current = true, r
	runMu.Unlock()

	suiteCfg, repCfg := ginkgo.GinkgoConfiguration()
	suiteCfg.LabelFilter = r.labelFilter()
	suiteCfg.DryRun = r.cfg.DryRun
	suiteCfg.RandomizeAllSpecs = false
	suiteCfg.FailFast = false
	suiteCfg.Timeout = 24 * time.Hour // claims carry their own timeouts
	repCfg.Verbose = r.cfg.Verbose
	repCfg.NoColor = true
	repCfg.Succinct = !r.cfg.Verbose
	progress := r.cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	prevOut := formatter.ColorableStdOut
	formatter.ColorableStdOut = progress
	defer func() { formatter.ColorableStdOut = prevOut }()

	started := time.Now()
	if !r.cfg.DryRun {
		r.startTarget(ctx, progress)
		defer r.stopTarget(ctx, progress)
	}
	ginkgo.RunSpecs(t, "xmppcheck conformance", suiteCfg, repCfg)
	rep := r.report(started)
	if r.startErr != nil {
		return rep, fmt.Errorf("conformance: start target: %w", r.startErr)
	}
	return rep, nil
}

// startTarget starts the target before any spec runs, bounded by
// StartTimeout alone (no claim's timeout), with progress lines on w. A
// failed start is recorded: every claim then ends in error saying so.
func (r *run) startTarget(ctx context.Context, w io.Writer) {
	name := r.cfg.Target.Info().Name
	fmt.Fprintf(w, "starting target %s (at most %s)…\n", name, r.cfg.StartTimeout)
	t0 := time.Now()
	sctx, cancel := context.WithTimeoutCause(ctx, r.cfg.StartTimeout,
		fmt.Errorf("the target did not start within %s (raise --start-timeout or start.timeout in the target file)", r.cfg.StartTimeout))
	defer cancel()
	r.started = true
	err := r.cfg.Target.Start(sctx)
	if cause := context.Cause(sctx); err != nil && sctx.Err() != nil && ctx.Err() == nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	if err != nil {
		r.startErr = err
		fmt.Fprintf(w, "target %s did not start after %s: %v\n", name, time.Since(t0).Round(time.Second), err)
		return
	}
	fmt.Fprintf(w, "target %s ready in %s\n", name, time.Since(t0).Round(time.Millisecond))
}

// stopTarget stops what startTarget started, even when ctx was cancelled.
func (r *run) stopTarget(ctx context.Context, w io.Writer) {
	if !r.started {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := r.cfg.Target.Close(cctx); err != nil {
		fmt.Fprintf(w, "stop target: %v\n", err)
	}
}

// report assembles the results in policy order. A selected claim with no
// result (its spec was interrupted or timed out) is an error.
func (r *run) report(started time.Time) *report.Report {
	pol := r.cfg.Policy
	rep := &report.Report{
		Tool:    report.Tool{Name: "xmppcheck", Version: r.cfg.Version},
		Policy:  report.Policy{Name: pol.Name, File: pol.File, Source: pol.Source},
		Started: started, Duration: report.Duration(time.Since(started)),
		Strict: r.cfg.Strict,
	}
	if !pol.Updated.IsZero() {
		rep.Policy.Updated = pol.Updated.Format("2006-01-02")
	}
	if r.cfg.DryRun {
		rep.Finish()
		return rep
	}
	rep.Target = r.cfg.Target.Info()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range pol.Claims {
		if !r.selected[c.ID] {
			continue
		}
		res, ok := r.results[c.ID]
		if !ok {
			res = baseResult(c)
			res.Verdict = report.Error
			res.Reason = "the harness did not finish this claim (interrupted or timed out)"
			if r.startErr != nil {
				res.Reason = "the target did not start: " + r.startErr.Error()
			}
		}
		rep.Results = append(rep.Results, res)
	}
	rep.Finish()
	return rep
}

func baseResult(c spec.Claim) report.Result {
	k := c.Kind()
	res := report.Result{
		Claim: string(c.ID), Title: k.Title, Family: string(k.Family()), Labels: k.Labels(),
		Quote: report.Quote{Section: c.Section, Text: c.Text}, Passes: k.Passes, Evidence: []report.Evidence{},
	}
	if len(c.Params) > 0 {
		res.Params = map[string]string{}
		for name, v := range c.Params {
			res.Params[name] = v.String()
		}
	}
	for _, q := range c.Also {
		res.Also = append(res.Also, report.Quote{Section: q.Section, Text: q.Text})
	}
	return res
}

// SpecList returns the suite's specs as "[labels] container › spec" lines
// from a Ginkgo report: those selected to run, or all of them (the golden
// conformance list).
func SpecList(rep types.Report, all bool) []string {
	var out []string
	for _, s := range rep.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt || !all && s.State == types.SpecStateSkipped {
			continue
		}
		texts := append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText)
		out = append(out, fmt.Sprintf("[%s] %s", strings.Join(s.Labels(), ", "), strings.Join(texts, " › ")))
	}
	slices.Sort(out)
	return out
}

// List returns the specs the configuration selects, from a Ginkgo dry run,
// as SpecList lines. Like Run it may be called once per process.
func List(ctx context.Context, cfg Config) ([]string, error) {
	cfg.DryRun = true
	r, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := r.execute(ctx, &fakeT{}); err != nil {
		return nil, err
	}
	return r.specs, nil
}

// The spec list of every run (dry or not) is taken from Ginkgo's report.
var _ = ginkgo.ReportAfterSuite("xmppcheck spec list", func(rep types.Report) {
	if r := current; r != nil {
		r.specs = SpecList(rep, false)
		r.allSpecs = SpecList(rep, true)
	}
})
