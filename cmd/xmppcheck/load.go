package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/xmppcheck/xmppcheck/loadgen"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
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
	resultsOut, runID, startAt, stages, findMax string
	maxErrorRatio                               float64
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
(one self-contained page with charts). They are rendered from the results
stream (--results), written second by second while the run goes, so an
interrupted run or a failed write loses nothing: 'xmppcheck load report'
renders it again. Every input (flags, thresholds, output paths) is checked
before anything is sent or created.

Exit codes: 0 the run did its job and every threshold holds; 1 a threshold
was evaluated and failed; 2 usage or input error, or the run could not do
its job (target unreachable, no session established, nothing completed,
errors above --max-error-ratio, interrupted), with the reason.

Sharded runs: give every shard the same --run-id and --start-at (ci/k8s/
does), then 'xmppcheck load merge' checks that the shards belong together.`,
		Example: `  # 200 users, 2000 messages/s for 15 s against the embedded server
  xmppcheck load chat --users 200 --rate 2000 --duration 15s --json r.json --threshold 'p99<50ms' --threshold 'errors<0.1%'

  # the reference server in a container (built from fixtures/targets/reference)
  xmppcheck load chat --target reference --users 100 --rate 1000 --duration 30s --html r.html

  # logins against 'xmppcheck serve' on this machine, accounts listed in a file
  xmppcheck load login --server 127.0.0.1:5222 --domain localhost --accounts accounts.txt --users 50 --rate 20 --duration 10s

  # ramp up, hold, step, ramp down in one run
  xmppcheck load chat --users 100 --stages '5s:0-1000,10s:1000,10s:2000,5s:2000-0' --html r.html

  # the highest rate at which p99 stays under 50 ms with nothing lost
  xmppcheck load chat --users 200 --duration 5s --find-max 1000,2000,4000,8000,16000

  # shard 2 of 4 (see ci/k8s/), one run id and start time, then merge the shards exactly
  xmppcheck load chat --server 127.0.0.1:5222 --shard 2/4 --run-id 5eed --start-at +30s --users 40000 --rate 20000 --duration 60s --json shard-2.json
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
	fl.StringVar(&f.resultsOut, "results", "", "stream the results to this `FILE` as the run goes (JSON lines; 'xmppcheck load report' re-renders it); default with --json/--csv/--html: NAME.results.jsonl beside the first of them")
	fl.StringVar(&f.runID, "run-id", "", "the run's id, up to 16 hex digits (default: random); every shard of one run needs the same, 'load merge' checks it")
	fl.StringVar(&f.startAt, "start-at", "", "start the measured phase at this `TIME` (RFC 3339, e.g. 2026-12-08T01:00:00Z, or +DURATION from now): shards given one time share one schedule; a setup that ends later fails the run (exit 2)")
	fl.StringVar(&f.stages, "stages", "", "arrival-rate schedule instead of --rate/--duration: DURATION:RATE holds, DURATION:FROM-TO ramps, comma-separated, e.g. '10s:0-1000,20s:1000,20s:2000,10s:2000-0' (ramp up, hold, step, ramp down)")
	fl.StringVar(&f.findMax, "find-max", "", "run the scenario at each of these comma-separated `RATES` in turn (each for --duration) until a threshold breaks, and report the highest passing rate (default thresholds: p99<50ms, lost==0, errors==0)")
	fl.Float64Var(&f.maxErrorRatio, "max-error-ratio", 0.1, "above this share of failed operations (errors and lost deliveries per expected operation) the run did not do its job: exit 2, whatever the thresholds say")
	cmd.AddCommand(newLoadMergeCmd(), newLoadReportCmd())
	return cmd
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
