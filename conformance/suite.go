package conformance

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// checkFunc tests one claim. It returns nil when its observations are in
// (the verdict then follows from them), failf/notTestablef for a verdict
// it decides itself, and any other error when it could not finish.
type checkFunc func(ctx context.Context, e *Env) error

// checks maps claim kinds to their tests; each checks_*.go file adds its
// own.
var checks = map[spec.ClaimID]checkFunc{}

// order runs the claims that spend a shared server's per-address budgets
// or move its clock last, so that each finds its budget fresh: behind a
// container's port proxy every client shares one address. After the
// claims that disturb nothing come registration.rate-limited (spends the
// registration budget), the clock claims (move the clock 21 days, which
// also ends time-windowed limits on servers that use the moved clock),
// registration.minimal-data (needs one registration, after the limit's
// window), and last auth.brute-force-protection (servers that lock an
// address out lock every later client out).
func order() []spec.Kind {
	last := []spec.ClaimID{spec.RegistrationRateLimited, spec.OfflineRetention, spec.UploadRetention,
		spec.RegistrationMinimalData, spec.AuthBruteForce}
	var first, end []spec.Kind
	for _, k := range spec.Kinds() {
		if contains(last, k.ID) {
			end = append(end, k)
		} else {
			first = append(first, k)
		}
	}
	for _, id := range last {
		for _, k := range end {
			if k.ID == id {
				first = append(first, k)
			}
		}
	}
	return first
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// One ordered container holds every claim kind, so that the claims that
// disturb a shared server run last; ContinueOnFailure keeps a failing claim
// from skipping the others. The target is started by Run before Ginkgo
// runs a spec and stopped after the last (run.startTarget), so that its
// start — an image build may take many minutes — is inside no claim's
// budget.
var _ = ginkgo.Describe("xmppcheck conformance", ginkgo.Ordered, ginkgo.ContinueOnFailure, func() {
	for _, k := range order() {
		describeKind(k)
	}
})

func describeKind(k spec.Kind) {
	timeout := 60 * time.Second
	if current != nil {
		timeout = current.cfg.Timeout
	}
	ginkgo.Describe(string(k.ID), ginkgo.Label(k.Labels()...), func() {
		var e *Env
		ginkgo.BeforeEach(func(ctx ginkgo.SpecContext) {
			r := current
			r.reset(ctx)
			c, _ := r.cfg.Policy.Claim(k.ID)
			e = newEnv(r.cfg.Target, r.cfg.Policy, c, r.cfg.IOTimeout)
		})
		// AfterEach, not DeferCleanup: in an Ordered container the
		// latter would run after AfterAll has stopped the target.
		ginkgo.AfterEach(func(ctx ginkgo.SpecContext) {
			if err := e.close(ctx); err != nil {
				ginkgo.GinkgoWriter.Printf("cleanup of %s: %v\n", k.ID, err)
			}
		}, ginkgo.NodeTimeout(timeout))
		ginkgo.It(k.Passes, func(ctx ginkgo.SpecContext) {
			res := current.check(ctx, e, timeout)
			ginkgo.AddReportEntry("verdict", res.Verdict, ginkgo.ReportEntryVisibilityFailureOrVerbose)
			switch {
			case res.Verdict == report.Pass:
			case res.Verdict == report.NotTestable && !current.cfg.Strict:
				// Not a pass: a skip, and only in a run that is not strict
				// (TestConformance runs strict, or compares the verdicts
				// with a fixture's expected.yaml).
				ginkgo.Skip("NOT TESTABLE (not a pass): " + res.Reason)
			default:
				ginkgo.Fail(fmt.Sprintf("%s: %s", res.Verdict, res.Reason))
			}
		}, ginkgo.SpecTimeout(timeout+10*time.Second))
	})
}

// check runs the claim's test within the claim timeout and records its
// result; a panic in a check is an error verdict, never a pass.
func (r *run) check(ctx context.Context, e *Env, timeout time.Duration) (res report.Result) {
	res = baseResult(e.Claim)
	start := time.Now()
	defer func() {
		res.Duration = report.Duration(time.Since(start))
		res.Transcript = e.Transcript.String()
		r.record(res)
	}()
	if r.startErr != nil {
		res.Verdict, res.Reason = report.Error, "the target did not start: "+r.startErr.Error()
		return res
	}
	var lacks []string
	for _, c := range e.Kind.Needs {
		if ok, why := e.Target.Has(c); !ok {
			lacks = append(lacks, fmt.Sprintf("%s (%s)", c, why))
		}
	}
	if len(lacks) > 0 {
		// The claim cannot run: name the evidence channels it would
		// examine and the target lacks as well.
		for _, c := range e.Kind.Channels {
			if ok, why := e.Target.Has(c); !ok {
				lacks = append(lacks, fmt.Sprintf("%s (%s)", c, why))
			}
		}
		res.Verdict, res.Reason = report.NotTestable, "the target lacks what this claim needs: "+strings.Join(lacks, "; ")
		return res
	}
	fn := checks[e.Claim.ID]
	if fn == nil {
		res.Verdict, res.Reason = report.Error, "xmppcheck has no test for this claim kind yet"
		return res
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("the check panicked: %v\n%s", p, debug.Stack())
			}
		}()
		return fn(cctx, e)
	}()
	res.Verdict, res.Reason = e.result(err, cctx.Err())
	res.Evidence = append(res.Evidence, e.obs...)
	return res
}

// reset gives the spec a fresh server where the target can (not for the
// first spec, whose server has just started). A failed reset is recorded
// as the start error: every later claim ends in error.
func (r *run) reset(ctx context.Context) {
	rs, ok := r.cfg.Target.(target.Resetter)
	if !ok || r.startErr != nil {
		return
	}
	if r.specsSeen++; r.specsSeen == 1 {
		return
	}
	if err := rs.Reset(ctx); err != nil {
		r.startErr = err
	}
}

// checkClaim tests one claim outside Ginkgo, in a fresh environment: the
// conformance suite's own tests use it to prove each verdict both ways
// (Ginkgo runs one suite per process).
func checkClaim(ctx context.Context, r *run, id spec.ClaimID) report.Result {
	c, ok := r.cfg.Policy.Claim(id)
	if !ok {
		res := report.Result{Claim: string(id), Verdict: report.Error, Reason: "the policy makes no such claim"}
		return res
	}
	r.reset(ctx)
	e := newEnv(r.cfg.Target, r.cfg.Policy, c, r.cfg.IOTimeout)
	defer e.close(context.WithoutCancel(ctx))
	return r.check(ctx, e, r.cfg.Timeout)
}
