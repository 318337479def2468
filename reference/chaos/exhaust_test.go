package chaos

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/reference"
)

// noFile is the open-file limit of the server process in the exhaustion
// tests: low enough that a few hundred connections exhaust it.
const noFile = 256

// floodSource is the address the floods come from; no log line may carry
// it except a failed login.
var floodSource = netip.MustParseAddr("127.0.0.88")

// TestDescriptorExhaustion is finding 1 of issue 10: after "too many open
// files", s2s and the admin socket never answered again. For each
// listener, a flood of idle connections from one address exhausts the
// server's descriptors (per-address caps and the unauthenticated budget
// are lifted, so that it really does); once the flood ends, every listener
// and the admin socket must serve again, the burst must be logged once per
// listener, and no log line may carry the flooding address (positive
// control: a failed login from it).
func TestDescriptorExhaustion(t *testing.T) {
	cfg := newConfig(t)
	cfg.NoFile = noFile
	cfg.Limits = reference.Limits{MaxConnsPerAddr: -1, MaxS2SConnsPerAddr: -1, MaxPreAuth: -1}
	c := mustStart(t, cfg)
	c.addUser("alice")
	targets := map[string]string{"c2s": c.addrs.C2S, "c2s_tls": c.addrs.C2STLS, "s2s": c.addrs.S2S, "http": c.addrs.HTTP, "metrics": c.addrs.Metrics}
	names := []string{"c2s", "c2s_tls", "s2s", "http", "metrics"}
	for _, name := range names {
		held, release := flood(t, targets[name], floodSource, noFile+64)
		c.waitLog("listener=" + name + " err=")
		// XMPPCHECK_CHAOS_HOLD keeps the descriptors exhausted longer, so
		// that the backoff reaches its cap (BENCHMARKS.md, RELIABILITY).
		if d, err := time.ParseDuration(os.Getenv("XMPPCHECK_CHAOS_HOLD")); err == nil {
			time.Sleep(d)
		}
		// While exhausted, the other listeners and the admin socket are
		// starved too; once the flood ends, all must serve again.
		t0 := time.Now()
		release()
		checks := c.checks()
		keys := make([]string, 0, len(checks))
		for k := range checks {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var worst time.Duration
		for _, k := range keys {
			eventually(t, name+" flood: "+k, checks[k])
			worst = max(worst, time.Since(t0))
		}
		t.Logf("RELIABILITY exhaustion via %s: %d connections held, all listeners and admin serving %v after release", name, len(held), worst.Round(time.Millisecond))
	}
	log := c.log()
	for _, name := range names {
		if n := strings.Count(log, `msg="accept failing; retrying with backoff until it recovers" listener=`+name+" "); n < 1 {
			t.Errorf("no exhaustion line for %s", name)
		}
	}
	if !strings.Contains(log, "too many open files") {
		t.Fatalf("control: the floods never exhausted descriptors:\n%s", log)
	}
	// The address scan, with its positive control.
	ctx := context.Background()
	if cl, err := c.login(ctx, "alice-wrong", floodSource); err == nil {
		cl.Close(ctx)
		t.Fatal("a login with a wrong password succeeded")
	}
	c.waitLog(`msg="failed login"`)
	for _, line := range strings.Split(c.log(), "\n") {
		if strings.Contains(line, floodSource.String()) && !strings.Contains(line, `msg="failed login"`) {
			t.Errorf("the flooding address in a log line: %s", line)
		}
	}
	if !strings.Contains(c.log(), "addr="+floodSource.String()) {
		t.Fatal("positive control: the failed login's address is not in the log")
	}
}
