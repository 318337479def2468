package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/loadgen"
	"github.com/xmppcheck/xmppcheck/loadgen/report"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
	"github.com/xmppcheck/xmppcheck/loadgen/threshold"
)

type loadFlags struct {
	server, domain, tlsMode, caFile, mechanisms string
	users                                       int
	rate                                        float64
	duration, ramp, drain, hold, late, timeout  time.Duration
	maxMessages                                 int64
	size, rosterSize, maxInflight               int
	mix                                         string
	accountsFile, provisionCmd                  string
	register                                    bool
	userPrefix, password                        string
	target, targetFile, fixtures                string
	sourceAddrs                                 string
	shard                                       string
	jsonOut, csvOut, htmlOut                    string
	thresholds                                  []string
	progress                                    string
	verbose                                     bool
	cpuProfile                                  string
	paceTick                                    time.Duration
}

func newLoadCmd() *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load SCENARIO",
		Short: "Drive real XMPP sessions at a fixed arrival rate and report latency percentiles",
		Long: `load drives real XMPP sessions against a server at a fixed arrival rate (open
model) and reports latency percentiles measured from each operation's
scheduled time, so a slow server cannot hide behind a slowed-down generator.

Scenarios:
  login     connect → STARTTLS → SCRAM → bind → presence, --rate logins/s;
            connect, TLS, auth and bind are timed separately
  chat      --users online users in pairs; --rate messages/s in all;
            end-to-end latency carried in each stanza
  presence  --rate presence broadcasts/s, each to --roster-size contacts
  offline   half the users send --rate messages/s to the other half while
            they are offline; they then log in and the delivery is timed
  mixed     chat, presence and login at once, weighted by --mix

Without --server the embedded reference server is started in-process with
temporary directories (its CPU and memory then count with the generator's).
--target NAME (fixtures/targets/NAME/target.yaml) or --target-file FILE
starts a server in a container instead: the image is built when the file
says how, ports are published on 127.0.0.1, the accounts are created with
the file's accounts.create command (or in-band registration), and the
container is removed afterwards, also after an interrupt. Behind published
ports every session reaches the server from one address, so a server that
caps connections per address (the reference fixture: 100) refuses the
sessions beyond its cap.
Accounts are <user-prefix>0 … <user-prefix>N-1 with --password; create them
with --register (in-band registration), --provision-cmd, or list them with
--accounts FILE ("user password" per line).

Every run is bounded by --duration and --max-messages; after the last send
the generator waits at most --drain for deliveries. Late starts (operations
that began more than --late after their schedule) are counted separately;
their latency still counts from the schedule.

Results: a text summary on stdout, --json (raw HDR histograms: shards merge
exactly with 'xmppcheck load merge'), --csv (per-second series) and --html
(one self-contained page with charts). --threshold sets the exit code:
0 all thresholds hold, 1 one failed, 2 usage or infrastructure error.`,
		Example: `  # 200 users, 2000 messages/s for 15 s against the embedded server
  xmppcheck load chat --users 200 --rate 2000 --duration 15s --json r.json --threshold 'p99<50ms' --threshold 'errors<0.1%'

  # the reference server in a container (built from fixtures/targets/reference)
  xmppcheck load chat --target reference --users 100 --rate 1000 --duration 30s --html r.html

  # logins against a server on this machine, accounts created by IBR
  xmppcheck load login --server 127.0.0.1:5222 --domain localhost --register --users 500 --rate 100 --duration 30s

  # shard 2 of 4 (see ci/k8s/), then merge the shards exactly
  xmppcheck load chat --server 127.0.0.1:5222 --shard 2/4 --users 40000 --rate 20000 --duration 60s --json shard-2.json
  xmppcheck load merge shard-*.json --json all.json --html all.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd, args[0], &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "c2s address HOST:PORT of the server under load (loopback or a container the project started); default: the embedded reference server")
	fl.StringVar(&f.domain, "domain", "localhost", "XMPP domain of the accounts")
	fl.StringVar(&f.tlsMode, "tls", "starttls", "how to secure streams: starttls or direct (XEP-0368)")
	fl.StringVar(&f.caFile, "ca", "", "PEM file of CA certificates to verify the server with (default: no verification, as load tools usually do)")
	fl.StringVar(&f.mechanisms, "mechanisms", "", "comma-separated SASL mechanisms in order of preference (default SCRAM-SHA-256,SCRAM-SHA-1; PLAIN only if listed)")
	fl.IntVar(&f.users, "users", 100, "simulated users of the whole run (all shards)")
	fl.Float64Var(&f.rate, "rate", 100, "operations per second of the whole run: messages (chat, offline), presence broadcasts, logins")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "length of the measured phase")
	fl.Int64Var(&f.maxMessages, "max-messages", 0, "bound on operations of the whole run (0: rate × duration)")
	fl.DurationVar(&f.ramp, "ramp", 0, "spread the setup logins over this time (0: as fast as --max-inflight allows)")
	fl.DurationVar(&f.drain, "drain", 5*time.Second, "after the last send, wait at most this long for deliveries")
	fl.DurationVar(&f.hold, "hold", 0, "login: keep each session open this long before closing it")
	fl.DurationVar(&f.late, "late", 5*time.Millisecond, "count an operation as a late start when it starts more than this after its schedule")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "deadline of every network read/write and login step")
	fl.IntVar(&f.size, "size", 64, "bytes of filler in each message body")
	fl.IntVar(&f.rosterSize, "roster-size", 10, "presence: contacts each user's broadcast reaches")
	fl.IntVar(&f.maxInflight, "max-inflight", 1000, "logins in progress at most (login scenario and setup)")
	fl.StringVar(&f.mix, "mix", "chat=70,presence=20,login=10", "mixed: weights of the blended scenarios")
	fl.StringVar(&f.accountsFile, "accounts", "", "file of accounts, one \"user password\" per line (instead of generated names)")
	fl.BoolVar(&f.register, "register", false, "create the accounts by in-band registration (XEP-0077) before the run; existing ones are reused")
	fl.StringVar(&f.provisionCmd, "provision-cmd", "", "shell command run once per account before the run; {user} {password} {domain} are replaced, e.g. 'prosodyctl register {user} {domain} {password}'")
	fl.StringVar(&f.userPrefix, "user-prefix", "load", "generated account names are PREFIX0 … PREFIXn-1")
	fl.StringVar(&f.password, "password", "load-password-1", "password of the generated accounts")
	fl.StringVar(&f.target, "target", "", "build and start the fixture container fixtures/targets/`NAME`/target.yaml, create the accounts in it, load it, and remove it afterwards")
	fl.StringVar(&f.targetFile, "target-file", "", "like --target, for a target `FILE` of your own (format: CONTRIBUTING.md, \"Target files\")")
	fl.StringVar(&f.fixtures, "fixtures", "", "`DIR` holding fixture targets (default: fixtures/targets of the enclosing checkout)")
	fl.StringVar(&f.sourceAddrs, "source-addrs", "", "local addresses to spread connections over, e.g. 127.0.0.2-127.0.0.200 (passes 64k connections per destination)")
	fl.StringVar(&f.shard, "shard", "0/1", "run shard I of N (0-based): users and rate are split, pairs stay in one shard")
	fl.StringVar(&f.jsonOut, "json", "", "write the result as JSON (raw histograms, for 'load merge')")
	fl.StringVar(&f.csvOut, "csv", "", "write the per-second series as CSV")
	fl.StringVar(&f.htmlOut, "html", "", "write a self-contained HTML report with charts")
	fl.StringArrayVar(&f.thresholds, "threshold", nil, "pass/fail expression, repeatable: 'p99<50ms', 'login.p99<500ms', 'errors<0.1%', 'lost==0', 'late<1%', 'rate>=9000'")
	fl.StringVar(&f.progress, "progress", "auto", "live progress bars on stderr: auto (when stderr is a terminal), always, never")
	fl.BoolVar(&f.verbose, "verbose", false, "log connection-level events to stderr")
	fl.DurationVar(&f.paceTick, "pace-tick", 0, "let pacing workers wake at most once per this interval and send all that is due (less CPU at high rates; the added send lag is measured and counted in latency); 0 wakes for every operation")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run (setup to teardown) to this file")
	cmd.AddCommand(newLoadMergeCmd())
	return cmd
}

func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want I/N with 0 <= I < N", s)
	}
	return i, n, nil
}

func runLoad(cmd *cobra.Command, scenario string, f *loadFlags) error {
	known := false
	for _, s := range loadgen.Scenarios {
		known = known || s == scenario
	}
	if !known {
		return usageErr("unknown scenario %q: one of %s", scenario, strings.Join(loadgen.Scenarios, ", "))
	}
	var ths []threshold.Threshold
	for _, e := range f.thresholds {
		t, err := threshold.Parse(e)
		if err != nil {
			return usageErr("%v", err)
		}
		ths = append(ths, t)
	}
	shard, shards, err := parseShard(f.shard)
	if err != nil {
		return usageErr("%v", err)
	}
	cfg := loadgen.Config{
		Scenario: scenario, Users: f.users, Rate: f.rate, Duration: f.duration, MaxOps: f.maxMessages,
		Ramp: f.ramp, Drain: f.drain, PayloadSize: f.size, RosterSize: f.rosterSize, Hold: f.hold,
		MaxInflight: f.maxInflight, Late: f.late, Timeout: f.timeout, Shard: shard, Shards: shards, PaceTick: f.paceTick,
	}
	if scenario == "mixed" {
		if cfg.Mix, err = loadgen.ParseMix(f.mix); err != nil {
			return usageErr("%v", err)
		}
	}
	if f.sourceAddrs != "" {
		if cfg.SourceAddrs, err = loadgen.ParseAddrRange(f.sourceAddrs); err != nil {
			return usageErr("%v", err)
		}
	}
	stderr := cmd.ErrOrStderr()
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = logger

	switch f.tlsMode {
	case "starttls":
		cfg.Target.TLSMode = xmppclient.StartTLS
	case "direct":
		cfg.Target.TLSMode = xmppclient.DirectTLS
	default:
		return usageErr("--tls %q: starttls or direct", f.tlsMode)
	}
	if f.mechanisms != "" {
		cfg.Target.Mechanisms = strings.Split(f.mechanisms, ",")
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return usageErr("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usageErr("--ca %s: no PEM certificate", f.caFile)
		}
		cfg.Target.RootCAs = pool
	}

	// Accounts.
	if f.accountsFile != "" {
		if cfg.Accounts, err = loadgen.ReadAccounts(f.accountsFile); err != nil {
			return usageErr("%v", err)
		}
		if !cmd.Flags().Changed("users") {
			cfg.Users = len(cfg.Accounts)
		}
		if cfg.Users > len(cfg.Accounts) {
			return usageErr("--users %d but %s lists %d accounts", cfg.Users, f.accountsFile, len(cfg.Accounts))
		}
	} else {
		cfg.Accounts = loadgen.GenerateAccounts(f.userPrefix, cfg.Users, f.password)
	}
	if f.users < 1 {
		return usageErr("--users must be at least 1")
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Target.
	var provision loadgen.Provisioner
	switch {
	case countSet(f.server, f.target, f.targetFile) > 1:
		return usageErr("give only one of --server, --target and --target-file")
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
	mine := loadgen.ShardAccounts(cfg.Accounts, cfg.Users, shard, shards)
	switch {
	case f.register && f.provisionCmd != "":
		return usageErr("--register and --provision-cmd exclude each other")
	case f.register:
		provision = loadgen.RegisterIBR(cfg.Target, cfg.Timeout)
	case f.provisionCmd != "":
		provision = loadgen.ProvisionCommand(f.provisionCmd, cfg.Target.Domain)
	}
	if provision != nil {
		fmt.Fprintf(stderr, "provisioning %d accounts…\n", len(mine))
		if _, err := loadgen.Provision(ctx, mine, 16, provision); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}

	// Progress.
	showBars := f.progress == "always" || (f.progress == "auto" && isTerminal(os.Stderr))
	if f.progress != "auto" && f.progress != "always" && f.progress != "never" {
		return usageErr("--progress %q: auto, always or never", f.progress)
	}
	barsDone := make(chan struct{})
	var stopBars func()
	if showBars {
		cfg.Observe = func(l *loadgen.Live) { stopBars = progressBars(stderr, l, barsDone) }
	} else {
		fmt.Fprintf(stderr, "load %s: %d users, %.0f ops/s for %s (shard %d/%d)…\n", scenario, cfg.Users, cfg.Rate, cfg.Duration, shard, shards)
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
	res, runErr := loadgen.Run(ctx, cfg)
	if stopBars != nil {
		close(barsDone)
		stopBars()
	}
	if res == nil {
		if errors.Is(runErr, loadgen.ErrConfig) {
			return usageErr("%v", runErr)
		}
		return &exitError{code: exitUsage, err: runErr}
	}
	return finishLoad(cmd.OutOrStdout(), res, ths, f.jsonOut, f.csvOut, f.htmlOut, runErr)
}

// finishLoad writes the outputs and turns thresholds into the exit code.
func finishLoad(stdout io.Writer, res *stats.Result, ths []threshold.Threshold, jsonOut, csvOut, htmlOut string, runErr error) error {
	main := loadgen.MainMetric(res.Scenario)
	var outcomes []threshold.Outcome
	failedN := 0
	for _, t := range ths {
		o := t.Check(res, main)
		if !o.Pass || o.Err != nil {
			failedN++
		}
		outcomes = append(outcomes, o)
	}
	report.Text(stdout, res, main, outcomes)
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
		if err := writeFileWith(htmlOut, func(w io.Writer) error { return report.HTML(w, res, main, outcomes) }); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	if runErr != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("run interrupted: %w (partial results written)", runErr)}
	}
	if failedN > 0 {
		return failed(fmt.Errorf("%d of %d thresholds failed", failedN, len(ths)))
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

// progressBars renders live bars until done is closed; the returned func
// waits for the last render.
func progressBars(w io.Writer, l *loadgen.Live, done <-chan struct{}) func() {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	sessions := p.AddBar(int64(max(l.Users, 1)),
		mpb.PrependDecorators(decor.Name("sessions up ", decor.WC{W: 13}), decor.CountersNoUnit("%d / %d", decor.WC{W: 18})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return l.Phase() })))
	sent := p.AddBar(max(l.Total, 1),
		mpb.PrependDecorators(decor.Name("sent ", decor.WC{W: 13}), decor.CountersNoUnit("%d / %d", decor.WC{W: 18})),
		mpb.AppendDecorators(decor.Percentage()))
	var lastN int64
	lastT := time.Now()
	rate := 0.0
	recv := p.AddBar(max(l.Total, 1),
		mpb.PrependDecorators(decor.Name("completed ", decor.WC{W: 13}), decor.CountersNoUnit("%d / %d", decor.WC{W: 18})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return fmt.Sprintf("%.0f/s", rate) })))
	errs := p.New(0, mpb.NopStyle(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("%-13s%d   late starts %d", "errors", l.Count(stats.Errors), l.Count(stats.LateStarts))
		})))
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				sessions.SetCurrent(l.Count(stats.Sessions))
				sent.SetCurrent(l.Count(stats.Sent))
				recv.SetCurrent(l.Count(stats.Completed))
				sessions.SetTotal(-1, true)
				sent.SetTotal(-1, true)
				recv.SetTotal(-1, true)
				errs.SetTotal(-1, true)
				p.Wait()
				return
			case now := <-t.C:
				sessions.SetCurrent(l.Count(stats.Sessions))
				sent.SetCurrent(l.Count(stats.Sent))
				c := l.Count(stats.Completed)
				if exp := l.Count(stats.Expected); exp > l.Total {
					recv.SetTotal(exp, false)
				}
				recv.SetCurrent(c)
				if dt := now.Sub(lastT).Seconds(); dt >= 1 {
					rate = float64(c-lastN) / dt
					lastN, lastT = c, now
				}
			}
		}
	}()
	return func() { <-finished }
}

func newLoadMergeCmd() *cobra.Command {
	var jsonOut, csvOut, htmlOut string
	var thresholds []string
	cmd := &cobra.Command{
		Use:   "merge RESULT.json...",
		Short: "Combine shard results exactly (histograms bucket by bucket, counters summed)",
		Long: `merge combines the --json results of the shards of one run. Counters and
errors add up, HDR histograms merge bucket by bucket (percentiles are then
recomputed, never averaged), per-second intervals of the same second combine.
Thresholds apply to the merged result.`,
		Example: `  xmppcheck load merge shard-0.json shard-1.json --json all.json --html all.html --threshold 'p99<50ms'`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ths []threshold.Threshold
			for _, e := range thresholds {
				t, err := threshold.Parse(e)
				if err != nil {
					return usageErr("%v", err)
				}
				ths = append(ths, t)
			}
			var parts []*stats.Result
			for _, p := range args {
				r, err := stats.ReadFile(p)
				if err != nil {
					return usageErr("%v", err)
				}
				parts = append(parts, r)
			}
			res, err := stats.Merge(parts...)
			if err != nil {
				return usageErr("%v", err)
			}
			return finishLoad(cmd.OutOrStdout(), res, ths, jsonOut, csvOut, htmlOut, nil)
		},
	}
	cmd.Flags().StringVar(&jsonOut, "json", "", "write the merged result as JSON")
	cmd.Flags().StringVar(&csvOut, "csv", "", "write the merged per-second series as CSV")
	cmd.Flags().StringVar(&htmlOut, "html", "", "write a self-contained HTML report")
	cmd.Flags().StringArrayVar(&thresholds, "threshold", nil, "pass/fail expression (see 'xmppcheck load --help'), repeatable")
	return cmd
}
