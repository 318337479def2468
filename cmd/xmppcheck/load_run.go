package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/loadgen"
	"github.com/xmppcheck/xmppcheck/loadgen/report"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
	"github.com/xmppcheck/xmppcheck/loadgen/threshold"
)

func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want I/N with 0 <= I < N", s)
	}
	return i, n, nil
}

// parseStartAt reads an RFC 3339 time or +DURATION from now; it must lie
// in the future, at most a day ahead.
func parseStartAt(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dd, err := time.ParseDuration(d)
		if err != nil {
			return t, fmt.Errorf("--start-at %q: %v", s, err)
		}
		t = now.Add(dd)
	} else {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return t, fmt.Errorf("--start-at %q: want an RFC 3339 time (2026-12-08T01:00:00Z) or +DURATION", s)
		}
	}
	if !t.After(now) {
		return t, fmt.Errorf("--start-at %s is not in the future (now %s)", t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if t.Sub(now) > 24*time.Hour {
		return t, fmt.Errorf("--start-at %s is more than a day ahead", t.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// parseRates reads --find-max's ladder: positive, increasing rates.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--find-max %q: want increasing positive rates, e.g. 1000,2000,4000", s)
		}
		if len(out) > 0 && r <= out[len(out)-1] {
			return nil, fmt.Errorf("--find-max %q: rates must increase", s)
		}
		out = append(out, r)
	}
	return out, nil
}

// checkWritable makes sure a file can be created at path, before the run:
// the directory exists and takes a new file. Nothing the user owns is
// changed (a probe file is created beside it and removed).
func checkWritable(flag, path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s %s: is a directory", flag, path)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".xmppcheck-probe-*")
	if err != nil {
		return fmt.Errorf("%s %s: cannot write there: %v", flag, path, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// defaultResultsPath is NAME.results.jsonl beside the first output file.
func defaultResultsPath(outs ...string) string {
	for _, o := range outs {
		if o != "" {
			return strings.TrimSuffix(o, filepath.Ext(o)) + ".results.jsonl"
		}
	}
	return ""
}

// loadPlan is a validated command line: everything runLoad needs, checked
// before anything is started, created or sent.
type loadPlan struct {
	cfg        loadgen.Config
	ths        []threshold.Threshold
	rates      []float64 // --find-max ladder
	results    string
	jsonOut    string
	csvOut     string
	htmlOut    string
	maxErrors  float64
	defaultThs bool
}

func parseLoad(cmd *cobra.Command, scenario string, f *loadFlags) (*loadPlan, error) {
	known := false
	for _, s := range loadgen.Scenarios {
		known = known || s == scenario
	}
	if !known {
		return nil, usageErr("unknown scenario %q: one of %s", scenario, strings.Join(loadgen.Scenarios, ", "))
	}
	changed := cmd.Flags().Changed
	p := &loadPlan{jsonOut: f.jsonOut, csvOut: f.csvOut, htmlOut: f.htmlOut, maxErrors: f.maxErrorRatio}
	for _, e := range f.thresholds {
		t, err := threshold.Parse(e)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		p.ths = append(p.ths, t)
	}
	shard, shards, err := parseShard(f.shard)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if f.maxErrorRatio < 0 || f.maxErrorRatio > 1 {
		return nil, usageErr("--max-error-ratio %g: want 0 … 1", f.maxErrorRatio)
	}
	if changed("mix") && scenario != "mixed" {
		return nil, usageErr("--mix applies only to the mixed scenario, not %s", scenario)
	}
	if changed("roster-size") && scenario != "presence" && scenario != "mixed" {
		return nil, usageErr("--roster-size applies only to presence and mixed, not %s", scenario)
	}
	if changed("hold") && scenario != "login" && scenario != "mixed" {
		return nil, usageErr("--hold applies only to login and mixed, not %s", scenario)
	}
	cfg := loadgen.Config{
		Scenario: scenario, Users: f.users, Rate: f.rate, Duration: f.duration, MaxOps: f.maxMessages,
		Ramp: f.ramp, Drain: f.drain, PayloadSize: f.size, RosterSize: f.rosterSize, Hold: f.hold,
		MaxInflight: f.maxInflight, Late: f.late, Timeout: f.timeout, Shard: shard, Shards: shards, PaceTick: f.paceTick,
	}
	if f.stages != "" {
		if changed("rate") || changed("duration") {
			return nil, usageErr("--stages replaces --rate and --duration: give one or the other")
		}
		st, err := loadgen.ParseStages(f.stages)
		if err != nil {
			return nil, usageErr("--stages: %v", err)
		}
		cfg.Pacer, cfg.Rate, cfg.Duration = st, 0, 0
	}
	if f.findMax != "" {
		if f.stages != "" || changed("rate") || shards > 1 || f.startAt != "" {
			return nil, usageErr("--find-max sets the rates itself: it excludes --rate, --stages, --shard and --start-at")
		}
		if p.rates, err = parseRates(f.findMax); err != nil {
			return nil, usageErr("%v", err)
		}
		cfg.Rate = p.rates[0]
		if len(p.ths) == 0 {
			p.defaultThs = true
			for _, e := range []string{"p99<50ms", "lost==0", "errors==0"} {
				t, _ := threshold.Parse(e)
				p.ths = append(p.ths, t)
			}
		}
	}
	if scenario == "mixed" {
		if cfg.Mix, err = loadgen.ParseMix(f.mix); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	if f.sourceAddrs != "" {
		if cfg.SourceAddrs, err = loadgen.ParseAddrRange(f.sourceAddrs); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	if f.runID != "" {
		id, err := strconv.ParseUint(f.runID, 16, 64)
		if err != nil || id == 0 {
			return nil, usageErr("--run-id %q: want 1 to 16 hex digits, not all zero", f.runID)
		}
		cfg.RunID = id
	} else if shards > 1 {
		return nil, usageErr("--shard %s: give every shard the same --run-id (and --start-at), so that 'load merge' can tell the shards of one run", f.shard)
	} else {
		var b [8]byte
		rand.Read(b[:])
		cfg.RunID = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if f.startAt != "" {
		if cfg.StartAt, err = parseStartAt(f.startAt, time.Now()); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	switch f.tlsMode {
	case "starttls":
		cfg.Target.TLSMode = xmppclient.StartTLS
	case "direct":
		cfg.Target.TLSMode = xmppclient.DirectTLS
	default:
		return nil, usageErr("--tls %q: starttls or direct", f.tlsMode)
	}
	if f.progress != "auto" && f.progress != "always" && f.progress != "never" {
		return nil, usageErr("--progress %q: auto, always or never", f.progress)
	}
	if f.mechanisms != "" {
		cfg.Target.Mechanisms = strings.Split(f.mechanisms, ",")
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, usageErr("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--ca %s: no PEM certificate", f.caFile)
		}
		cfg.Target.RootCAs = pool
	}
	switch {
	case countSet(f.server, f.target, f.targetFile) > 1:
		return nil, usageErr("give only one of --server, --target and --target-file")
	case f.server != "":
		host, port, err := net.SplitHostPort(f.server)
		if err != nil || host == "" || port == "" {
			return nil, usageErr("--server %q: want HOST:PORT", f.server)
		}
	}
	if f.register && f.provisionCmd != "" {
		return nil, usageErr("--register and --provision-cmd exclude each other")
	}
	if f.users < 1 {
		return nil, usageErr("--users must be at least 1")
	}
	if f.accountsFile != "" {
		if cfg.Accounts, err = loadgen.ReadAccounts(f.accountsFile); err != nil {
			return nil, usageErr("%v", err)
		}
		if !changed("users") {
			cfg.Users = len(cfg.Accounts)
		}
		if cfg.Users > len(cfg.Accounts) {
			return nil, usageErr("--users %d but %s lists %d accounts", cfg.Users, f.accountsFile, len(cfg.Accounts))
		}
	} else {
		cfg.Accounts = loadgen.GenerateAccounts(f.userPrefix, cfg.Users, f.password)
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageErr("%v", err)
	}
	if err := threshold.CheckMetrics(p.ths, loadgen.ScenarioMetrics(scenario, cfg.Mix)); err != nil {
		return nil, usageErr("%v", err)
	}
	p.results = f.resultsOut
	if p.results == "" {
		p.results = defaultResultsPath(f.jsonOut, f.csvOut, f.htmlOut)
	}
	for _, o := range []struct{ flag, path string }{{"--json", f.jsonOut}, {"--csv", f.csvOut}, {"--html", f.htmlOut}, {"--results", p.results}, {"--cpuprofile", f.cpuProfile}} {
		if err := checkWritable(o.flag, o.path); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	for _, t := range p.ths {
		cfg.Thresholds = append(cfg.Thresholds, t.Expr)
	}
	p.cfg = cfg
	return p, nil
}

func runLoad(cmd *cobra.Command, scenario string, f *loadFlags) error {
	p, err := parseLoad(cmd, scenario, f)
	if err != nil {
		return err
	}
	cfg := p.cfg
	stderr := cmd.ErrOrStderr()
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Target.
	var provision loadgen.Provisioner
	switch {
	case f.target != "" || f.targetFile != "":
		tf, err := loadTargetFile(f.target, f.targetFile, f.fixtures)
		if err != nil {
			return err
		}
		dockerenv.Setup()
		t, cleanup, prov, err := startLoadTarget(ctx, tf, cfg.Target.TLSMode, stderr, f.verbose)
		if err != nil {
			var ee *exitError
			if errors.As(err, &ee) {
				return err
			}
			return &exitError{code: exitUsage, err: err}
		}
		defer cleanup()
		t.RootCAs, t.Mechanisms = cfg.Target.RootCAs, cfg.Target.Mechanisms
		cfg.Target, provision = t, prov
	case f.server != "":
		cfg.Target.Addr, cfg.Target.Domain = f.server, f.domain
		// Reachable at all? A refused or silent address is an
		// infrastructure error, not a server that failed its load.
		d := net.Dialer{Timeout: min(cfg.Timeout, 5*time.Second)}
		c, err := d.DialContext(ctx, "tcp", f.server)
		if err != nil {
			return usageErr("target %s unreachable: %v (nothing was sent)", f.server, err)
		}
		c.Close()
	default:
		t, cleanup, prov, err := startEmbeddedForLoad(ctx, stderr)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		defer cleanup()
		cfg.Target.Addr, cfg.Target.Domain, cfg.Target.InProcess = t.Addr, t.Domain, true
		cfg.Target.Name = "embedded reference server"
		if cfg.Target.RootCAs == nil {
			cfg.Target.RootCAs = t.RootCAs
		}
		provision = prov
	}
	if cfg.Target.Name == "" {
		cfg.Target.Name = cfg.Target.Addr
	}
	mine := loadgen.ShardAccounts(cfg.Accounts, cfg.Users, cfg.Shard, cfg.Shards)
	switch {
	case f.register:
		provision = loadgen.RegisterIBR(cfg.Target, cfg.Timeout)
	case f.provisionCmd != "":
		provision = loadgen.ProvisionCommand(f.provisionCmd, cfg.Target.Domain)
	}
	if provision != nil {
		fmt.Fprintf(stderr, "provisioning %d accounts…\n", len(mine))
		if _, err := loadgen.Provision(ctx, mine, 16, provision); err != nil {
			hint := ""
			if f.register {
				hint = " (servers limit in-band registrations per address: 'xmppcheck serve' allows 5 an hour; create the accounts with 'xmppcheck admin user add' and pass --accounts FILE instead)"
			}
			return usageErr("%v%s", err, hint)
		}
	}

	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return usageErr("--cpuprofile: %v", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return usageErr("--cpuprofile: %v", err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	showBars := f.progress == "always" || (f.progress == "auto" && isTerminal(os.Stderr))
	if p.rates != nil {
		return findMax(ctx, cmd.OutOrStdout(), stderr, cfg, p, showBars)
	}
	res, runErr := runOnce(ctx, stderr, cfg, p.results, showBars)
	if res == nil {
		if errors.Is(runErr, loadgen.ErrConfig) {
			return usageErr("%v", runErr)
		}
		return &exitError{code: exitUsage, err: runErr}
	}
	return finishLoad(cmd.OutOrStdout(), stderr, res, p.ths, p.jsonOut, p.csvOut, p.htmlOut, p.maxErrors, runErr)
}

// runOnce runs cfg, streaming its results to resultsPath (if set) and
// returning the result rebuilt from that stream: what the reports show is
// exactly what the stream holds.
func runOnce(ctx context.Context, stderr io.Writer, cfg loadgen.Config, resultsPath string, showBars bool) (*stats.Result, error) {
	var sf *os.File
	if resultsPath != "" {
		var err error
		if sf, err = os.Create(resultsPath); err != nil {
			return nil, fmt.Errorf("--results: %w", err)
		}
		defer sf.Close()
		cfg.Stream = stats.NewStreamWriter(sf)
	}
	barsDone := make(chan struct{})
	var stopBars func()
	if showBars {
		cfg.Observe = func(l *loadgen.Live) { stopBars = progressBars(stderr, l, barsDone) }
	} else {
		fmt.Fprintf(stderr, "load %s: %d users, %.0f ops/s for %s (shard %d/%d, run %x)…\n", cfg.Scenario, cfg.Users, cfg.Rate, cfg.Duration, cfg.Shard, max(cfg.Shards, 1), cfg.RunID)
	}
	res, runErr := loadgen.Run(ctx, cfg)
	if stopBars != nil {
		close(barsDone)
		stopBars()
	}
	if res == nil || sf == nil {
		return res, runErr
	}
	if err := cfg.Stream.Err(); err != nil {
		fmt.Fprintf(stderr, "xmppcheck: results stream %s: %v; the reports use the in-memory result\n", resultsPath, err)
		return res, runErr
	}
	if err := sf.Sync(); err != nil {
		fmt.Fprintf(stderr, "xmppcheck: results stream %s: %v\n", resultsPath, err)
	}
	if _, err := sf.Seek(0, io.SeekStart); err != nil {
		return res, runErr
	}
	streamed, err := stats.ReadStream(sf)
	if err != nil {
		fmt.Fprintf(stderr, "xmppcheck: results stream %s: %v; the reports use the in-memory result\n", resultsPath, err)
		return res, runErr
	}
	fmt.Fprintf(stderr, "results streamed to %s ('xmppcheck load report %s' renders them again)\n", resultsPath, resultsPath)
	return streamed, runErr
}

// jobNotDone returns why a result cannot be judged by its thresholds
// (the run did not do its job), or "".
func jobNotDone(res *stats.Result, maxErrors float64) string {
	c := res.Counters
	top := topErrors(res, 3)
	switch {
	case res.Scenario != "login" && c[stats.Sessions] == 0:
		return "no session was established" + top
	case c[stats.Completed] == 0:
		return "no operation completed" + top
	case res.ErrorRatio() > maxErrors:
		return fmt.Sprintf("%.3g%% of operations failed (errors and lost deliveries), above --max-error-ratio %.3g%%", 100*res.ErrorRatio(), 100*maxErrors) + top
	}
	return ""
}

func topErrors(res *stats.Result, n int) string {
	if len(res.Errors) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(res.Errors))
	for k := range res.Errors {
		kinds = append(kinds, k)
	}
	sortByCount(kinds, res.Errors)
	var parts []string
	for i, k := range kinds {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", k, res.Errors[k]))
	}
	return ": " + strings.Join(parts, ", ")
}

func sortByCount(kinds []string, m map[string]int64) {
	for i := 1; i < len(kinds); i++ {
		for j := i; j > 0 && (m[kinds[j]] > m[kinds[j-1]] || (m[kinds[j]] == m[kinds[j-1]] && kinds[j] < kinds[j-1])); j-- {
			kinds[j], kinds[j-1] = kinds[j-1], kinds[j]
		}
	}
}

// evaluate checks the thresholds and records their verdicts in res.
func evaluate(res *stats.Result, ths []threshold.Threshold) (outcomes []threshold.Outcome, failedN int) {
	main := loadgen.MainMetric(res.Scenario)
	res.Thresholds = nil
	for _, t := range ths {
		o := t.Check(res, main)
		if !o.Pass || o.Err != nil {
			failedN++
		}
		v := stats.Verdict{Expr: o.Expr, Actual: o.Actual, Pass: o.Pass && o.Err == nil}
		if o.Err != nil {
			v.Error = o.Err.Error()
		}
		res.Thresholds = append(res.Thresholds, v)
		outcomes = append(outcomes, o)
	}
	return outcomes, failedN
}

// finishLoad evaluates the thresholds, writes the outputs and returns the
// exit code: 2 when the run did not do its job (or was interrupted), 1
// when a threshold failed, 0 otherwise.
func finishLoad(stdout, stderr io.Writer, res *stats.Result, ths []threshold.Threshold, jsonOut, csvOut, htmlOut string, maxErrors float64, runErr error) error {
	main := loadgen.MainMetric(res.Scenario)
	outcomes, failedN := evaluate(res, ths)
	notDone := jobNotDone(res, maxErrors)
	switch {
	case errors.Is(runErr, loadgen.ErrStartMissed):
		notDone = runErr.Error() // the reason nothing was sent
	case runErr != nil && notDone == "":
		notDone = fmt.Sprintf("run interrupted: %v", runErr)
	}
	if res.Incomplete && notDone == "" {
		notDone = "the results stream ends before the run did"
	}
	report.Text(stdout, res, main, outcomes, notDone)
	if err := writeOutputs(res, outcomes, notDone, jsonOut, csvOut, htmlOut); err != nil {
		return err
	}
	if notDone != "" {
		return &exitError{code: exitUsage, err: fmt.Errorf("the run could not do its job: %s (thresholds not judged)", notDone)}
	}
	if failedN > 0 {
		return failed(fmt.Errorf("%d of %d thresholds failed", failedN, len(ths)))
	}
	return nil
}

func writeOutputs(res *stats.Result, outcomes []threshold.Outcome, notDone, jsonOut, csvOut, htmlOut string) error {
	main := loadgen.MainMetric(res.Scenario)
	if jsonOut != "" {
		if err := res.WriteFile(jsonOut); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	if csvOut != "" {
		if err := writeFileWith(csvOut, func(w io.Writer) error { return report.CSV(w, res) }); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	if htmlOut != "" {
		if err := writeFileWith(htmlOut, func(w io.Writer) error { return report.HTML(w, res, main, outcomes, notDone) }); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	return nil
}

func writeFileWith(path string, fn func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
