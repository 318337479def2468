package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

// Metric names.
const (
	MetricMessage  = "message"          // chat: end-to-end, scheduled send → receipt
	MetricPresence = "presence"         // presence: scheduled broadcast → receipt by each contact
	MetricOffline  = "offline_delivery" // offline: receiver's initial presence → receipt of each stored message
	MetricLogin    = "login"            // login: scheduled start → bound and presence sent
	MetricConnect  = "connect"          // login: TCP connect
	MetricTLS      = "tls"              // login: STARTTLS or direct TLS handshake
	MetricAuth     = "auth"             // login: SASL and stream restart
	MetricBind     = "bind"             // login: resource binding
	MetricSetup    = "setup_login"      // sessions logged in before the measured phase
	MetricLag      = "send_lag"         // every scheduled operation: actual start − scheduled start
)

var allMetrics = []string{MetricMessage, MetricPresence, MetricOffline, MetricLogin, MetricConnect, MetricTLS, MetricAuth, MetricBind, MetricSetup, MetricLag}

// MainMetric is the latency a scenario is judged by (thresholds without a
// metric name refer to it).
func MainMetric(scenario string) string {
	switch scenario {
	case "login":
		return MetricLogin
	case "presence":
		return MetricPresence
	case "offline":
		return MetricOffline
	}
	return MetricMessage
}

// Live is a read-only view of a running run, for progress displays.
type Live struct {
	rec   *stats.Recorder
	Users int   // sessions this process sets up
	Total int64 // operations this process schedules
	phase atomic.Pointer[string]
}

// Phase is "setup", "run", "drain" or "done".
func (l *Live) Phase() string {
	if p := l.phase.Load(); p != nil {
		return *p
	}
	return "setup"
}

// Count returns a counter's current value (stats.Sent, stats.Completed, …).
func (l *Live) Count(name string) int64 { return l.rec.Live(name) }

func (l *Live) setPhase(p string) { l.phase.Store(&p) }

type runner struct {
	cfg   Config
	rec   *stats.Recorder
	scram *xmppclient.SCRAMCache
	live  *Live
	runID uint64

	srcNext      atomic.Uint64
	readers      sync.WaitGroup
	closing      atomic.Bool
	readDeadline time.Time

	m                                                         map[string]int
	cSent, cCompleted, cExpected, cLate, cScheduled, cForeign *atomic.Int64
	cSessions                                                 *atomic.Int64
	sessionsNow, sessionsPeak                                 atomic.Int64

	groups []*group
}

// group is the set of sessions one scenario drives.
type group struct {
	kind     string // chat, presence, login, offline-send, offline-recv
	idxs     []int  // account indexes
	sessions []*session
	pos      map[int]int // account index -> position in idxs
	rate     float64
	pacer    Pacer
	total    int64
	contacts int // presence: roster size
}

func (g *group) jid(r *runner, pos int) string {
	return r.cfg.Accounts[g.idxs[pos]].User + "@" + r.cfg.Target.Domain
}

// Run executes a load run as configured and returns its result. It returns
// early, with the partial result, when ctx ends. Errors are returned only
// for configuration and infrastructure problems; everything that goes wrong
// with the server under load is counted in the result.
func Run(ctx context.Context, cfg Config) (*stats.Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, scram: &xmppclient.SCRAMCache{}, runID: cfg.RunID}
	if r.runID == 0 {
		var b [8]byte
		rand.Read(b[:])
		r.runID = binary.LittleEndian.Uint64(b[:]) | 1
	}
	r.rec = stats.NewRecorder(allMetrics, 4*runtime.GOMAXPROCS(0))
	r.m = map[string]int{}
	for _, m := range allMetrics {
		r.m[m] = r.rec.Metric(m)
	}
	r.cSent = r.rec.Counter(stats.Sent)
	r.cCompleted = r.rec.Counter(stats.Completed)
	r.cExpected = r.rec.Counter(stats.Expected)
	r.cLate = r.rec.Counter(stats.LateStarts)
	r.cScheduled = r.rec.Counter(stats.Scheduled)
	r.cForeign = r.rec.Counter(stats.Foreign)
	r.cSessions = r.rec.Counter(stats.Sessions)
	r.rec.Counter(stats.Errors)

	lo, hi := ShardRange(cfg.Users, cfg.Shard, cfg.Shards)
	users := hi - lo
	rate := shardRate(cfg.Rate, cfg.Users, lo, hi)
	share := float64(hi-lo) / float64(cfg.Users)
	// The shard's share of the schedule's operations; the small epsilon
	// keeps 300×10/30 from flooring to 99.
	total := int64(math.Floor(cfg.Pacer.Ops()*float64(hi-lo)/float64(cfg.Users) + 1e-6))
	if cfg.MaxOps > 0 {
		total = min(total, cfg.MaxOps*int64(hi)/int64(cfg.Users)-cfg.MaxOps*int64(lo)/int64(cfg.Users))
	}
	if users == 0 {
		return nil, fmt.Errorf("%w: shard %d/%d has no users (%d users in all)", ErrConfig, cfg.Shard, cfg.Shards, cfg.Users)
	}
	idxs := make([]int, users)
	for i := range idxs {
		idxs[i] = lo + i
	}
	if err := r.plan(idxs, scalePacer(cfg.Pacer, share), rate, total); err != nil {
		return nil, err
	}

	shard := stats.Shard{Index: cfg.Shard, Of: cfg.Shards, Users: users, Rate: rate, CPUIncludesSUT: cfg.Target.InProcess}
	shard.Host, _ = os.Hostname()
	need := uint64(users + cfg.MaxInflight + 256)
	shard.FDLimit, shard.Notes = raiseFDLimit(need)

	r.live = &Live{rec: r.rec, Users: 0, Total: 0}
	for _, g := range r.groups {
		if g.kind != "login" {
			r.live.Users += len(g.idxs)
		}
		r.live.Total += g.total
	}
	if cfg.Observe != nil {
		cfg.Observe(r.live)
	}

	config := map[string]any{
		"users": cfg.Users, "rate": cfg.Rate, "duration": cfg.Duration.String(), "max_ops": cfg.MaxOps,
		"ramp": cfg.Ramp.String(), "drain": cfg.Drain.String(), "payload_size": cfg.PayloadSize,
		"roster_size": cfg.RosterSize, "hold": cfg.Hold.String(), "late_threshold": cfg.Late.String(),
		"server": cfg.Target.Addr, "domain": cfg.Target.Domain, "tls": cfg.Target.TLSMode.String(),
		"shards": cfg.Shards, "run_id": fmt.Sprintf("%x", r.runID), "schedule": cfg.Pacer.String(),
	}
	if cfg.Scenario == "mixed" {
		config["mix"] = cfg.Mix
	}
	if len(cfg.Thresholds) > 0 {
		config["thresholds"] = cfg.Thresholds
	}
	if cfg.Target.Name != "" {
		config["target"] = cfg.Target.Name
	}
	if !cfg.StartAt.IsZero() {
		config["start_at"] = cfg.StartAt.UTC().Format(time.RFC3339Nano)
	}

	started := time.Now()
	r.rec.Restart(started)
	if cfg.Stream != nil {
		head := r.rec.Snapshot()
		head.Scenario, head.Config, head.Started = cfg.Scenario, config, started
		cfg.Stream.Head(head)
		r.rec.OnTick(func(iv stats.Interval) { cfg.Stream.Interval(iv) })
	}
	// Every read of every session ends at the latest here.
	r.readDeadline = started.Add(time.Duration(len(idxs)/100+1)*cfg.Timeout + 2*cfg.Ramp + cfg.Duration + cfg.Drain + 2*cfg.Timeout + cfg.Hold)
	if wait := time.Until(cfg.StartAt); wait > 0 {
		r.readDeadline = r.readDeadline.Add(wait)
	}
	cpu0 := cpuTime()
	tickCtx, stopTick := context.WithCancel(context.Background())
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				r.rec.Tick(now)
			case <-tickCtx.Done():
				return
			}
		}
	}()

	// Setup: log in every long-lived session.
	mem0 := sampleMemory()
	for _, g := range r.groups {
		if err := r.setup(ctx, g); err != nil {
			cfg.Logger.Warn("setup incomplete", "group", g.kind, "err", err)
		}
	}
	if est := r.cSessions.Load(); est > 0 {
		mem1 := sampleMemory()
		shard.MemPerUser = max(0, int64(mem1.heapStack)-int64(mem0.heapStack)) / est
		shard.RSSPerUser = max(0, int64(mem1.rss)-int64(mem0.rss)) / est
	}

	// Measured phase: every group paces from one start.
	r.live.setPhase("run")
	start := time.Now().Add(20 * time.Millisecond)
	var missed error
	if !cfg.StartAt.IsZero() {
		if start.After(cfg.StartAt) {
			// The shards' schedules would no longer share a clock: run
			// nothing rather than a load that merges into wrong rates.
			missed = fmt.Errorf("%w: start %s, setup ended %s late", ErrStartMissed, cfg.StartAt.UTC().Format(time.RFC3339Nano), start.Sub(cfg.StartAt).Round(time.Millisecond))
			r.rec.Error("setup:start-at-missed")
			start = time.Now()
		} else {
			start = cfg.StartAt
			sleepCtx(ctx, time.Until(start))
		}
	}
	var wg sync.WaitGroup
	var endMu sync.Mutex
	end := start
	for _, g := range r.groups {
		if missed != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := r.runGroup(ctx, g, start)
			endMu.Lock()
			if e.After(end) {
				end = e
			}
			endMu.Unlock()
		}()
	}
	wg.Wait()
	if now := time.Now(); ctx.Err() != nil && end.After(now) {
		end = now // interrupted: the measured phase ended here, not at its schedule
	}
	r.live.setPhase("drain")
	r.drain(ctx)
	r.live.setPhase("done")

	// Teardown.
	r.closing.Store(true)
	for _, g := range r.groups {
		for _, s := range g.sessions {
			if s != nil {
				s.close()
			}
		}
	}
	r.readers.Wait()
	stopTick()
	<-tickDone
	ended := time.Now()
	r.rec.Tick(ended)
	shard.CPUSeconds = (cpuTime() - cpu0).Seconds()
	shard.PeakSessions = r.sessionsPeak.Load()

	res := r.rec.Snapshot()
	res.Scenario = cfg.Scenario
	res.Started, res.Ended = started, ended
	res.Window = stats.Window{Start: start, End: end}
	res.Shards = []stats.Shard{shard}
	res.Config = config
	res.Thresholds = nil
	if cfg.Stream != nil {
		cfg.Stream.Tail(res)
	}
	if err := missed; err != nil {
		return &res, err
	}
	return &res, ctx.Err()
}

// plan splits the shard's users and rate into groups.
func (r *runner) plan(idxs []int, pacer Pacer, rate float64, total int64) error {
	add := func(kind string, ids []int, grate float64, total int64) *group {
		g := &group{kind: kind, idxs: ids, rate: grate, total: total, pos: map[int]int{}}
		if grate > 0 && rate > 0 {
			g.pacer = scalePacer(pacer, grate/rate) // a mixed group's weight; 1 otherwise
		}
		for p, i := range ids {
			g.pos[i] = p
		}
		g.sessions = make([]*session, len(ids))
		r.groups = append(r.groups, g)
		return g
	}
	switch r.cfg.Scenario {
	case "chat", "login":
		add(r.cfg.Scenario, idxs, rate, total)
	case "presence":
		if len(idxs) < 2 {
			return fmt.Errorf("%w: presence needs at least 2 users per shard", ErrConfig)
		}
		g := add("presence", idxs, rate, total)
		g.contacts = min(r.cfg.RosterSize, len(idxs)-1)
	case "offline":
		if len(idxs) < 2 {
			return fmt.Errorf("%w: offline needs at least 2 users per shard", ErrConfig)
		}
		half := len(idxs) / 2
		add("offline-send", idxs[:half], rate, total)
		add("offline-recv", idxs[half:], 0, 0)
	case "mixed":
		kinds := sortedMix(r.cfg.Mix)
		var sum float64
		for _, k := range kinds {
			sum += r.cfg.Mix[k]
		}
		if sum <= 0 {
			return fmt.Errorf("%w: mix has no positive weight", ErrConfig)
		}
		from := 0
		var opsUsed int64
		for i, k := range kinds {
			w := r.cfg.Mix[k] / sum
			to := from + int(math.Round(w*float64(len(idxs))))
			if i == len(kinds)-1 {
				to = len(idxs)
			}
			if k == "chat" && (to-from)%2 == 1 && to < len(idxs) {
				to++
			}
			to = min(to, len(idxs))
			ops := int64(math.Floor(w * float64(total)))
			if i == len(kinds)-1 {
				ops = total - opsUsed
			}
			opsUsed += ops
			if to-from < 2 {
				return fmt.Errorf("%w: mix gives %s %d users; raise --users", ErrConfig, k, to-from)
			}
			g := add(k, idxs[from:to], w*rate, ops)
			if k == "presence" {
				g.contacts = min(r.cfg.RosterSize, to-from-1)
			}
			from = to
		}
	}
	return nil
}

// setup logs in the long-lived sessions of g (not for login, whose
// sessions are the measured operation; not for offline receivers, who log
// in after the sends).
func (r *runner) setup(ctx context.Context, g *group) error {
	switch g.kind {
	case "login", "offline-recv":
		return nil
	}
	r.loginAll(ctx, g, nil)
	if g.kind == "presence" {
		return r.subscribeAll(ctx, g)
	}
	return nil
}

// loginAll logs in every user of g, at most MaxInflight at once, spread
// over Ramp if set; each sends initial presence and starts its reader.
// before, if set, runs just before a session's initial presence is sent.
func (r *runner) loginAll(ctx context.Context, g *group, before func(*session)) {
	sem := make(chan struct{}, r.cfg.MaxInflight)
	var wg sync.WaitGroup
	t0 := time.Now()
	for pos, idx := range g.idxs {
		if ctx.Err() != nil {
			break
		}
		if r.cfg.Ramp > 0 {
			at := t0.Add(time.Duration(float64(r.cfg.Ramp) * float64(pos) / float64(len(g.idxs))))
			if d := time.Until(at); d > 0 {
				sleepCtx(ctx, d)
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			lctx, cancel := context.WithTimeout(ctx, 4*r.cfg.Timeout)
			s, _, err := r.login(lctx, idx)
			cancel()
			if err != nil {
				r.rec.Error("setup:" + errorKind(err))
				return
			}
			r.rec.Record(r.m[MetricSetup], idx, time.Since(start))
			s.g = g
			g.sessions[pos] = s
			r.sessionUp()
			r.readers.Add(1)
			go s.readLoop(r.readDeadline)
			if before != nil {
				before(s)
			}
			if err := s.write([]byte("<presence/>")); err != nil {
				r.rec.Error("setup:presence:" + errorKind(err))
			}
		}()
	}
	wg.Wait()
}

func (r *runner) sessionUp() {
	r.cSessions.Add(1)
	n := r.sessionsNow.Add(1)
	for {
		p := r.sessionsPeak.Load()
		if n <= p || r.sessionsPeak.CompareAndSwap(p, n) {
			return
		}
	}
}

// subscribeAll makes user i subscribe to the next `contacts` users of g
// (RFC 6121 §3.1); readers approve requests as they arrive. It waits until
// every approval came back or the setup timeout.
func (r *runner) subscribeAll(ctx context.Context, g *group) error {
	n := len(g.idxs)
	buf := make([]byte, 0, 128)
	for i, s := range g.sessions {
		if s == nil {
			continue
		}
		for d := 1; d <= g.contacts; d++ {
			buf = append(buf[:0], "<presence type='subscribe' to='"...)
			buf = append(buf, g.jid(r, (i+d)%n)...)
			buf = append(buf, "'/>"...)
			if err := s.write(buf); err != nil {
				r.rec.Error("setup:subscribe:" + errorKind(err))
				break
			}
		}
	}
	deadline := time.Now().Add(max(30*time.Second, 3*r.cfg.Timeout))
	for time.Now().Before(deadline) && ctx.Err() == nil {
		missing := 0
		for _, s := range g.sessions {
			if s != nil && !s.dead.Load() {
				missing += max(0, g.contacts-int(s.approvals.Load()))
			}
		}
		if missing == 0 {
			// Let the presence probes that follow approvals arrive
			// before measuring.
			sleepCtx(ctx, 300*time.Millisecond)
			return nil
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	r.rec.Error("setup:subscriptions-incomplete")
	return fmt.Errorf("loadgen: presence subscriptions incomplete after the setup timeout")
}

// runGroup runs g's measured phase from start and returns when its last
// operation was scheduled.
func (r *runner) runGroup(ctx context.Context, g *group, start time.Time) time.Time {
	switch g.kind {
	case "chat":
		return r.runChat(ctx, g, start)
	case "presence":
		return r.runPresence(ctx, g, start)
	case "login":
		return r.runLogin(ctx, g, start)
	case "offline-send":
		return r.runOffline(ctx, g, start)
	}
	return start
}

// drain waits until every expected delivery completed, or Drain passed.
func (r *runner) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.cCompleted.Load() >= r.cExpected.Load() {
			return
		}
		sleepCtx(ctx, 10*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
