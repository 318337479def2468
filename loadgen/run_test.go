package loadgen_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
	"github.com/xmppcheck/xmppcheck/loadgen"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

func fakeTarget(t *testing.T, users int, opts ...fakexmpp.Option) (loadgen.Target, []loadgen.Account, *fakexmpp.Server) {
	t.Helper()
	s, err := fakexmpp.New(append([]fakexmpp.Option{fakexmpp.WithIterations(4096)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	accts := loadgen.GenerateAccounts("lt", users, "pw")
	for _, a := range accts {
		s.AddUser(a.User, a.Password)
	}
	return loadgen.Target{Addr: s.Addr(), Domain: s.Domain(), RootCAs: s.CertPool(), InProcess: true}, accts, s
}

func run(t *testing.T, cfg loadgen.Config) *stats.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		users    int
		rate     float64
		dur      time.Duration
		metric   string
		wantOps  int64 // completed operations expected
	}{
		{"chat", 20, 400, time.Second, loadgen.MetricMessage, 400},
		{"login", 10, 40, time.Second, loadgen.MetricLogin, 40},
		{"presence", 12, 100, time.Second, loadgen.MetricPresence, 100 * 4},
		{"offline", 10, 100, time.Second, loadgen.MetricOffline, 100},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			target, accts, _ := fakeTarget(t, tt.users)
			res := run(t, loadgen.Config{
				Scenario: tt.scenario, Target: target, Accounts: accts, Rate: tt.rate, Duration: tt.dur,
				RosterSize: 4, Drain: 10 * time.Second,
			})
			c := res.Counters
			if c[stats.Errors] != 0 {
				t.Errorf("errors: %v", res.Errors)
			}
			if c[stats.Completed] != tt.wantOps || c[stats.Expected] != tt.wantOps {
				t.Errorf("completed %d expected %d, want %d (counters %v)", c[stats.Completed], c[stats.Expected], tt.wantOps, c)
			}
			m := res.Metrics[tt.metric]
			if m == nil || m.Count != tt.wantOps {
				t.Fatalf("metric %s = %+v", tt.metric, m)
			}
			if m.P50US <= 0 || m.P99US < m.P50US || m.MaxUS < m.P99US {
				t.Errorf("percentiles not ordered: %+v", m)
			}
			if lag := res.Metrics[loadgen.MetricLag]; lag == nil || lag.Count != c[stats.Scheduled] {
				t.Errorf("send lag histogram missing or short: %+v scheduled %d", lag, c[stats.Scheduled])
			}
			if len(res.Series) == 0 {
				t.Error("no per-second series")
			}
			var sum int64
			for _, iv := range res.Series {
				sum += iv.Counters[stats.Completed]
			}
			if sum != c[stats.Completed] {
				t.Errorf("series completed sum %d != total %d", sum, c[stats.Completed])
			}
		})
	}
}

func TestLoginStepsAndSourceAddrs(t *testing.T) {
	target, accts, _ := fakeTarget(t, 4)
	addrs, err := loadgen.ParseAddrRange("127.0.0.2-127.0.0.4")
	if err != nil || len(addrs) != 3 || addrs[2] != netip.MustParseAddr("127.0.0.4") {
		t.Fatalf("ParseAddrRange = %v, %v", addrs, err)
	}
	res := run(t, loadgen.Config{Scenario: "login", Target: target, Accounts: accts, Rate: 20, Duration: time.Second, SourceAddrs: addrs})
	for _, m := range []string{loadgen.MetricConnect, loadgen.MetricTLS, loadgen.MetricAuth, loadgen.MetricBind, loadgen.MetricLogin} {
		if res.Metrics[m] == nil || res.Metrics[m].Count != 20 {
			t.Errorf("metric %s = %+v", m, res.Metrics[m])
		}
	}
	if len(res.Errors) > 0 {
		t.Errorf("errors %v", res.Errors)
	}
}

func TestErrorsByKind(t *testing.T) {
	target, accts, srv := fakeTarget(t, 4)
	srv.SetAuthFailure("temporary-auth-failure", "slow down")
	res := run(t, loadgen.Config{Scenario: "login", Target: target, Accounts: accts, Rate: 10, Duration: time.Second})
	if got := res.Errors["login:auth:temporary-auth-failure"]; got != 10 {
		t.Errorf("errors = %v, want 10 login:auth:temporary-auth-failure", res.Errors)
	}
	if res.Counters[stats.Completed] != 0 {
		t.Errorf("completed = %d", res.Counters[stats.Completed])
	}
}

func TestBoundedByCount(t *testing.T) {
	target, accts, _ := fakeTarget(t, 4)
	res := run(t, loadgen.Config{Scenario: "chat", Target: target, Accounts: accts, Rate: 1000, Duration: 10 * time.Second, MaxOps: 37})
	if res.Counters[stats.Sent] != 37 || res.Counters[stats.Completed] != 37 {
		t.Errorf("counters = %v, want 37 sent and received", res.Counters)
	}
}

func TestShardRange(t *testing.T) {
	for _, tc := range []struct{ users, n int }{{200, 4}, {7, 3}, {10, 10}, {1, 1}, {101, 2}} {
		next := 0
		for i := 0; i < tc.n; i++ {
			lo, hi := loadgen.ShardRange(tc.users, i, tc.n)
			if lo != next || hi < lo {
				t.Fatalf("%+v shard %d = [%d,%d)", tc, i, lo, hi)
			}
			if i < tc.n-1 && (hi-lo)%2 != 0 {
				t.Errorf("%+v shard %d has odd size %d", tc, i, hi-lo)
			}
			next = hi
		}
		if next != tc.users {
			t.Errorf("%+v: shards cover %d users", tc, next)
		}
	}
}

func TestMixed(t *testing.T) {
	target, accts, _ := fakeTarget(t, 40)
	res := run(t, loadgen.Config{
		Scenario: "mixed", Target: target, Accounts: accts, Rate: 200, Duration: time.Second,
		RosterSize: 3, Mix: map[string]float64{"chat": 50, "presence": 30, "login": 20}, Drain: 10 * time.Second,
	})
	c := res.Counters
	if c[stats.Errors] != 0 || c[stats.Completed] != c[stats.Expected] || c[stats.Scheduled] != 200 {
		t.Fatalf("counters %v errors %v", c, res.Errors)
	}
	for _, m := range []string{loadgen.MetricMessage, loadgen.MetricPresence, loadgen.MetricLogin} {
		if res.Metrics[m] == nil || res.Metrics[m].Count == 0 {
			t.Errorf("mixed run has no %s measurements", m)
		}
	}
	if want := int64(100 + 60*3 + 40); c[stats.Expected] != want {
		t.Errorf("expected %d deliveries, want %d (100 messages, 60 broadcasts to 3 contacts, 40 logins)", c[stats.Expected], want)
	}
}
