package loadgen

import (
	"bufio"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

// Scenarios the engine runs.
var Scenarios = []string{"login", "chat", "presence", "offline", "mixed"}

// Target is the server under load.
type Target struct {
	Name       string             // what the server is, for reports ("" when only an address was given)
	Addr       string             // c2s address host:port
	Domain     string             // XMPP domain
	TLSMode    xmppclient.TLSMode // StartTLS (default) or DirectTLS
	RootCAs    *x509.CertPool     // verify the server's certificate; nil skips verification
	Mechanisms []string           // SASL mechanisms (default: xmppclient's)
	InProcess  bool               // the server runs in this process (CPU and memory figures include it)
}

// Account is one test account.
type Account struct {
	User, Password string
}

// Config describes a run. Zero values take the defaults documented per
// field.
type Config struct {
	Scenario string
	Target   Target
	Accounts []Account // all accounts of the run (every shard's); see GenerateAccounts

	Users    int           // simulated users of the whole run (default len(Accounts))
	Rate     float64       // operations per second of the whole run: messages, logins, presence updates
	Duration time.Duration // length of the measured (sending) phase; required unless Pacer is set
	// Pacer, if set, is the whole run's arrival-rate schedule (stages:
	// ramp, hold, step); Rate and Duration are then taken from it.
	Pacer Pacer
	// StartAt, if set, is when the measured phase starts (setup runs
	// before it): shards given one StartAt share one schedule clock. A
	// setup that ends after it fails the run with ErrStartMissed.
	StartAt time.Time
	// Stream, if set, receives the results as the run goes: a head, one
	// interval per second, a tail (see stats.StreamWriter).
	Stream *stats.StreamWriter
	// Thresholds are the run's pass/fail expressions, recorded in the
	// result's config (and so in the stream) for 'load report'.
	Thresholds  []string
	MaxOps      int64         // bound on operations of the whole run (0: Rate×Duration)
	Ramp        time.Duration // spread setup logins over this time (0: as fast as MaxInflight allows)
	Drain       time.Duration // after the last send, wait this long at most for deliveries (default 5s)
	PayloadSize int           // bytes of filler in message bodies (default 64)
	RosterSize  int           // presence: contacts per user (default 10)
	Hold        time.Duration // login: keep each session this long before closing (default 0)
	MaxInflight int           // login and setup: concurrent logins at most (default 1000)
	Late        time.Duration // a start later than this after its schedule is a late start (default 5ms)
	Timeout     time.Duration // every network read/write and login step (default 10s)
	// PaceTick, if set, makes the pacing workers sleep at least this long
	// between wake-ups and send everything due at each wake-up: fewer
	// wake-ups (less CPU) for at most PaceTick of extra send lag, which is
	// measured (send_lag) and counted in every latency.
	PaceTick time.Duration
	Mix      map[string]float64 // mixed: weights of chat, presence, login (default chat 70, presence 20, login 10)

	Shard, Shards int // this process runs shard Shard of Shards (default 0 of 1)

	SourceAddrs []netip.Addr // local addresses to spread connections over (default: the system's choice)
	Logger      *slog.Logger
	// Observe, if set, is called once when the run starts with a live
	// view for progress displays.
	Observe func(*Live)
	// RunID marks the run's stanzas (default: random); stanzas with
	// another run's id are counted as foreign and ignored.
	RunID uint64
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("loadgen: invalid configuration")

// ErrStartMissed is returned when the setup ended after Config.StartAt.
var ErrStartMissed = errors.New("loadgen: setup ended after --start-at")

// Validate fills in the defaults and checks the configuration, without
// touching the network: call it before creating accounts or starting
// anything.
func (c *Config) Validate() error { return c.defaults() }

func (c *Config) defaults() error {
	if c.Shards == 0 {
		c.Shards = 1
	}
	if c.Shard < 0 || c.Shard >= c.Shards {
		return fmt.Errorf("%w: shard %d of %d", ErrConfig, c.Shard, c.Shards)
	}
	if c.Users == 0 {
		c.Users = len(c.Accounts)
	}
	if c.Users > len(c.Accounts) {
		return fmt.Errorf("%w: %d users but %d accounts", ErrConfig, c.Users, len(c.Accounts))
	}
	if c.Users < 1 {
		return fmt.Errorf("%w: no users", ErrConfig)
	}
	if c.Pacer != nil {
		if st, ok := c.Pacer.(Stages); ok {
			if err := st.check(); err != nil {
				return err
			}
		}
		c.Duration = c.Pacer.Duration()
		if c.Rate == 0 && c.Duration > 0 {
			c.Rate = c.Pacer.Ops() / c.Duration.Seconds()
		}
	}
	if c.Duration <= 0 {
		return fmt.Errorf("%w: duration must be positive (every run is bounded)", ErrConfig)
	}
	if c.Rate <= 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("%w: rate must be positive", ErrConfig)
	}
	if c.Pacer == nil {
		c.Pacer = Constant(c.Rate, c.Duration)
	}
	if c.MaxOps < 0 {
		return fmt.Errorf("%w: max operations must not be negative", ErrConfig)
	}
	for name, v := range map[string]time.Duration{"drain": c.Drain, "ramp": c.Ramp, "hold": c.Hold, "late": c.Late, "timeout": c.Timeout, "pace tick": c.PaceTick} {
		if v < 0 {
			return fmt.Errorf("%w: %s must not be negative", ErrConfig, name)
		}
	}
	if c.PayloadSize < 0 || c.RosterSize < 0 || c.MaxInflight < 0 {
		return fmt.Errorf("%w: sizes and counts must not be negative", ErrConfig)
	}
	if c.Drain == 0 {
		c.Drain = 5 * time.Second
	}
	if c.PayloadSize == 0 {
		c.PayloadSize = 64
	}
	if c.RosterSize == 0 {
		c.RosterSize = 10
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 1000
	}
	if c.Late == 0 {
		c.Late = 5 * time.Millisecond
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Scenario == "mixed" && len(c.Mix) == 0 {
		c.Mix = map[string]float64{"chat": 70, "presence": 20, "login": 10}
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	if !known {
		return fmt.Errorf("%w: unknown scenario %q (one of %s)", ErrConfig, c.Scenario, strings.Join(Scenarios, ", "))
	}
	return nil
}

// ScenarioMetrics returns the latency metrics a scenario measures (mix
// weighs the parts of "mixed"), in report order: what thresholds may name.
func ScenarioMetrics(scenario string, mix map[string]float64) []string {
	has := map[string]bool{MetricLag: true}
	var add func(string)
	add = func(s string) {
		switch s {
		case "chat":
			has[MetricMessage], has[MetricSetup] = true, true
		case "presence":
			has[MetricPresence], has[MetricSetup] = true, true
		case "offline":
			has[MetricOffline], has[MetricMessage], has[MetricSetup] = true, true, true
		case "login":
			for _, m := range []string{MetricLogin, MetricConnect, MetricTLS, MetricAuth, MetricBind} {
				has[m] = true
			}
		case "mixed":
			if len(mix) == 0 {
				mix = map[string]float64{"chat": 70, "presence": 20, "login": 10}
			}
			for k, w := range mix {
				if w > 0 {
					add(k)
				}
			}
		}
	}
	add(scenario)
	var out []string
	for _, m := range allMetrics {
		if has[m] {
			out = append(out, m)
		}
	}
	return out
}

// ShardRange returns the half-open range of user indexes [lo, hi) that
// shard i of n runs, out of users: contiguous blocks whose sizes differ by
// at most one and, where possible, are even (chat pairs stay in one shard).
func ShardRange(users, i, n int) (lo, hi int) {
	pairs := users / 2
	plo := pairs * i / n
	phi := pairs * (i + 1) / n
	lo, hi = 2*plo, 2*phi
	if i == n-1 {
		hi = users // an odd user out goes to the last shard
	}
	return lo, hi
}

// shardRate returns shard i's share of rate, proportional to its users.
func shardRate(rate float64, users, lo, hi int) float64 {
	return rate * float64(hi-lo) / float64(users)
}

// GenerateAccounts returns n accounts named prefix0 … prefix(n-1) with one
// password.
func GenerateAccounts(prefix string, n int, password string) []Account {
	a := make([]Account, n)
	for i := range a {
		a[i] = Account{User: prefix + strconv.Itoa(i), Password: password}
	}
	return a
}

// ReadAccounts reads "user password" (or "user:password") lines; blank
// lines and lines starting with # are skipped.
func ReadAccounts(path string) ([]Account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: accounts: %w", err)
	}
	defer f.Close()
	var out []Account
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		var user, pass string
		if i := strings.IndexAny(s, " \t"); i > 0 {
			user, pass = s[:i], strings.TrimSpace(s[i+1:])
		} else if i := strings.IndexByte(s, ':'); i > 0 {
			user, pass = s[:i], s[i+1:]
		}
		if user == "" || pass == "" {
			return nil, fmt.Errorf("loadgen: accounts: %s:%d: want \"user password\"", path, line)
		}
		if i := strings.IndexByte(user, '@'); i >= 0 {
			user = user[:i]
		}
		out = append(out, Account{User: user, Password: pass})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: accounts: %w", err)
	}
	return out, nil
}

// ParseAddrRange parses "127.0.0.2-127.0.0.200", "127.0.0.2,127.0.0.3" or a
// single address into a list (at most 1<<20 addresses).
func ParseAddrRange(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		from, to, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(from))
		if err != nil {
			return nil, fmt.Errorf("%w: source address %q: %v", ErrConfig, from, err)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(strings.TrimSpace(to))
		if err != nil {
			return nil, fmt.Errorf("%w: source address %q: %v", ErrConfig, to, err)
		}
		if a.BitLen() != b.BitLen() || b.Less(a) {
			return nil, fmt.Errorf("%w: bad range %s", ErrConfig, part)
		}
		for x := a; ; x = x.Next() {
			out = append(out, x)
			if x == b || len(out) > 1<<20 {
				break
			}
		}
	}
	if len(out) > 1<<20 {
		return nil, fmt.Errorf("%w: more than 2^20 source addresses", ErrConfig)
	}
	for _, a := range out {
		if !a.IsLoopback() {
			return nil, fmt.Errorf("%w: source address %s is not a loopback address; load targets stay on this machine", ErrConfig, a)
		}
	}
	return out, nil
}

// ParseMix parses "chat=70,presence=20,login=10".
func ParseMix(s string) (map[string]float64, error) {
	m := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			k, v, ok = strings.Cut(strings.TrimSpace(part), ":")
		}
		w, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || w < 0 {
			return nil, fmt.Errorf("%w: mix %q: want name=weight", ErrConfig, part)
		}
		switch k {
		case "chat", "presence", "login":
		default:
			return nil, fmt.Errorf("%w: mix: unknown scenario %q (chat, presence, login)", ErrConfig, k)
		}
		m[k] = w
	}
	return m, nil
}

func sortedMix(m map[string]float64) []string {
	var ks []string
	for k, w := range m {
		if w > 0 {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}
