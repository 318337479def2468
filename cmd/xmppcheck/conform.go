package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/conformance"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/conformance/waiver"
	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	itarget "github.com/xmppcheck/xmppcheck/internal/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

type conformFlags struct {
	policy     string
	targetName string
	targetFile string
	fixtures   string
	remote     remoteSpec
	pull       bool
	waivers    string
	claims     []string
	timeout    time.Duration
	ioTimeout  time.Duration
	// startTimeout, when set, overrides the target file's start.timeout.
	startTimeout time.Duration
	strict       bool
	keep         bool
	list         bool
	verbose      bool
	noColor      bool
	out          outputs
}

func newConformCmd() *cobra.Command {
	var f conformFlags
	cmd := &cobra.Command{
		Use:   "conform [flags]",
		Short: "Test that an XMPP server keeps every claim of a privacy policy",
		Long: `conform runs the conformance suite: every claim of the policy (default: the
embedded JabberX policy) is tested against a server, and each ends in one
verdict with the evidence it rests on:

  pass          the server kept the promise, as the evidence shows
  fail          the server broke it
  not-testable  the target lacks what the test needs (logs, data, clock,
                accounts) — never a pass; --strict makes it a failure
  error         the harness could not finish (unreachable server, timeout,
                an evidence scan that could not see the server's data)

Targets:
  (default)            the embedded reference server, in-process on loopback,
                       with temporary data and key and a test clock
  --target NAME        fixtures/targets/NAME/target.yaml (built into the
                       binary; a checkout's own copy first): a server built
                       and started in a container (Docker), ports on
                       127.0.0.1; an image: is never pulled unless --pull
  --target-file FILE   the same format, for your own image or Dockerfile
  --remote DOMAIN      a live deployment, found by its SRV records like a
                       client does (or --remote HOST:PORT with --domain);
                       accounts from --accounts-file or $XMPPCHECK_ACCOUNTS
                       (one JID:PASSWORD a line), logged in first (preflight)
                       and never removed or changed; with --ibr, claims that
                       remove an account use xmppcheck-throwaway-… accounts;
                       claims needing logs, data or a clock are not-testable

--waivers FILE accepts known failures until a date (an expired waiver fails
the run); --sarif FILE writes SARIF 2.1.0 for code-scanning interfaces.
A run prints one line per phase and per claim on standard error; -v shows
the container build and Ginkgo's own output instead.

--claims selects claims by id (tls.c2s-required), glob (tls.*, 'offline.*')
or label (a family such as privacy, or a reference such as XEP-0077); it may
be repeated or comma-separated.

Exit status: 0 every selected claim passed (not-testable allowed unless
--strict), 1 a claim failed, 2 usage or infrastructure error (including any
claim whose verdict is error).`,
		Example: `  xmppcheck conform
  xmppcheck conform --claims 'tls.*' --junit junit.xml
  xmppcheck conform --target prosody --html prosody.html --json prosody.json
  xmppcheck conform --target-file deploy/target.yaml --strict --markdown "$GITHUB_STEP_SUMMARY"
  XMPPCHECK_ACCOUNTS='probe@example.org:secret' xmppcheck conform --remote example.org
  xmppcheck conform --remote xmpp.example.org:5222 --domain example.org \
      --accounts-file probe.txt --ibr --claims 'account.*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConform(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "policy `FILE` (default: the embedded JabberX policy)")
	fl.StringVar(&f.targetName, "target", "", "fixture target `NAME` (fixtures/targets/NAME/target.yaml)")
	fl.StringVar(&f.targetFile, "target-file", "", "target `FILE` describing a container to build and test")
	fl.StringVar(&f.fixtures, "fixtures", "", "`DIR` holding fixture targets (default: fixtures/targets of the enclosing checkout)")
	f.remote.flags(cmd)
	fl.StringArrayVar(&f.claims, "claims", nil, "claims to test: `ids, globs or labels` (default: all of the policy)")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "time allowed for each claim")
	fl.DurationVar(&f.ioTimeout, "io-timeout", 10*time.Second, "time allowed for each network read or write")
	fl.DurationVar(&f.startTimeout, "start-timeout", 0, "time allowed to start the target, image build included, before the first claim and outside every claim's --timeout\n(default: the target file's start.timeout, else "+conformance.DefaultStartTimeout.String()+")")
	fl.BoolVar(&f.strict, "strict", false, "treat not-testable as a failure")
	fl.StringVar(&f.waivers, "waivers", "", "waiver `FILE`: known failures (claim, reason, expires YYYY-MM-DD) reported as waived; an expired waiver fails the run")
	fl.BoolVar(&f.pull, "pull", false, "container targets: pull an image: that is not present locally (never done otherwise)")
	fl.BoolVar(&f.keep, "keep", false, "container targets: leave the container running afterwards (for debugging)")
	fl.BoolVar(&f.list, "list", false, "list the conformance specs (a dry run) and exit")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "show Ginkgo's progress on standard error and passing evidence")
	fl.BoolVar(&f.noColor, "no-color", false, "no colour in the console table (default: colour on a terminal)")
	f.out.flags(cmd)
	return cmd
}

func runConform(cmd *cobra.Command, f conformFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	pol, err := loadPolicy(f.policy, stderr)
	if err != nil {
		return err
	}
	selected, err := conformance.Select(pol, f.claims)
	if err != nil {
		return usageErr("%v", err)
	}
	if f.startTimeout < 0 || f.timeout <= 0 || f.ioTimeout <= 0 {
		return usageErr("conform: --timeout and --io-timeout must be positive, --start-timeout not negative")
	}
	var waivers *waiver.File
	if f.waivers != "" {
		if waivers, err = waiver.Load(f.waivers); err != nil {
			return usageErr("conform: %v", err)
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tg target.Target
	startTimeout := f.startTimeout
	cc := newContainerConsole(stderr, f.verbose)
	if !f.list {
		if tg, startTimeout, err = buildTarget(ctx, f, pol, cc); err != nil {
			return err
		}
	}
	cfg := conformance.Config{
		Policy: pol, Target: tg, Claims: f.claims, Timeout: f.timeout, IOTimeout: f.ioTimeout,
		StartTimeout: startTimeout, Strict: f.strict, Version: version, DryRun: f.list, Verbose: f.verbose,
	}
	if f.verbose {
		cfg.Progress = stderr
	} else {
		cfg.OnResult = func(done, total int, res report.Result) {
			cc.phase("claim %d of %d: %s %s", done, total, res.Claim, res.Verdict)
		}
	}
	if f.list {
		specs, err := conformance.List(ctx, cfg)
		if err != nil {
			return usageErr("%v", err)
		}
		for _, s := range specs {
			fmt.Fprintln(stdout, s)
		}
		return nil
	}
	cc.phase("testing %d claim(s) of %s (%s)", len(selected), pol.Name, targetWords(tg))
	rep, runErr := conformance.Run(ctx, cfg)
	if rep == nil || runErr != nil || rep.Summary.ExitCode == report.ExitError {
		cc.failed()
	}
	if rep == nil {
		return usageErr("conform: %v", runErr)
	}
	if waivers != nil {
		waivers.Apply(rep, time.Now())
	}
	console := stdout
	if f.out.toStdout() { // a report on standard output: the table goes to standard error
		console = stderr
	}
	if err := report.WriteConsole(console, rep, report.WithColor(!f.noColor && isTerminal(console)), report.WithVerbose(f.verbose)); err != nil {
		return usageErr("%v", err)
	}
	if err := f.out.write(rep, stdout); err != nil {
		return usageErr("conform: %v", err)
	}
	if runErr != nil {
		return usageErr("conform: %v", runErr)
	}
	switch rep.Summary.ExitCode {
	case report.ExitPass:
		return nil
	case report.ExitFailed:
		return silent(exitFailed)
	default:
		return silent(exitUsage)
	}
}

// buildTarget makes the target the flags describe; exactly one of
// --target, --target-file and --remote may be given. It also returns the
// time the target's start may take: --start-timeout, else a target file's
// start.timeout (--start-timeout overrides the file's), else 0 (the
// suite's default).
func buildTarget(ctx context.Context, f conformFlags, pol *spec.Policy, cc *containerConsole) (target.Target, time.Duration, error) {
	tg, err := buildTargetOnly(ctx, f, pol, cc)
	if err != nil {
		return nil, 0, err
	}
	if c, ok := tg.(interface{ File() *target.File }); ok {
		if f.startTimeout > 0 {
			c.File().Start.Timeout = itarget.Duration(f.startTimeout)
		}
		return tg, c.File().StartTimeout(), nil
	}
	return tg, f.startTimeout, nil
}

func buildTargetOnly(ctx context.Context, f conformFlags, pol *spec.Policy, cc *containerConsole) (target.Target, error) {
	r := f.remote
	if countSet(f.targetName, f.targetFile, r.remote) > 1 {
		return nil, usageErr("conform: give only one of --target, --target-file and --remote")
	}
	if r.remote == "" && (r.domain != "" || len(r.accounts) > 0 || r.accountsFile != "" || r.ibr || r.remoteTLS != "" || r.remoteS2S != "") {
		return nil, usageErr("conform: --domain, --account, --accounts-file, --ibr, --remote-tls and --remote-s2s need --remote")
	}
	switch {
	case r.remote != "":
		rr, err := r.resolve(ctx)
		if err != nil {
			return nil, usageErr("conform: %v", err)
		}
		if err := preflight(ctx, rr, f.ioTimeout); err != nil {
			return nil, usageErr("conform: %v", err)
		}
		return rr.target(r.ibr), nil
	case f.targetName != "" || f.targetFile != "":
		file, err := targetPath("conform", f.targetName, f.targetFile, f.fixtures)
		if err != nil {
			return nil, err
		}
		tf, err := target.LoadFile(file)
		if err != nil {
			return nil, usageErr("conform: %v", err)
		}
		if err := checkNoPull(ctx, tf, f.pull); err != nil {
			return nil, usageErr("conform: %v", err)
		}
		dockerenv.Setup()
		what := "image " + tf.Image
		if tf.Build != nil {
			what = "a build of " + tf.Build.Context
		}
		cc.phase("target %s: starting a container from %s, then the claims (the build log with -v)", tf.Name, what)
		return target.NewContainer(tf, target.WithKeep(f.keep), target.WithBuildLog(cc)), nil
	default:
		t, err := target.NewEmbedded(pol)
		if err != nil {
			return nil, usageErr("conform: embedded target: %v", err)
		}
		return t, nil
	}
}
