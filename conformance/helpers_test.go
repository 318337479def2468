package conformance

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// fakeTarget is a target around in-process test servers.
type fakeTarget struct {
	addrs    target.Addrs
	caps     map[spec.Capability]bool
	mu       sync.Mutex
	accounts []target.Account
	next     int
	logs     *evidence.Corpus
	data     *evidence.Corpus
}

func (f *fakeTarget) Info() report.Target {
	have, lacks := target.Capabilities(f)
	return report.Target{Name: "fake", Kind: "test", Domain: "localhost", Capabilities: have, Lacks: lacks}
}
func (f *fakeTarget) Start(context.Context) error { return nil }
func (f *fakeTarget) Close(context.Context) error { return nil }
func (f *fakeTarget) Domain() string              { return "localhost" }
func (f *fakeTarget) Addrs() target.Addrs         { return f.addrs }
func (f *fakeTarget) Has(c spec.Capability) (bool, string) {
	if c == spec.CapNetwork || f.caps[c] {
		return true, ""
	}
	return false, "the fake target does not offer it"
}
func (f *fakeTarget) LocalAddrs() bool { return true }
func (f *fakeTarget) SeenAddrs(_ context.Context, a netip.Addr) []netip.Addr {
	return []netip.Addr{a}
}
func (f *fakeTarget) NewAccount(context.Context, string) (target.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next >= len(f.accounts) {
		return target.Account{}, target.ErrNoAccount
	}
	f.next++
	return f.accounts[f.next-1], nil
}
func (f *fakeTarget) DeleteAccount(context.Context, target.Account) error { return nil }
func (f *fakeTarget) IBR() bool                                           { return false }
func (f *fakeTarget) Logs(context.Context) (*evidence.Corpus, error)      { return f.logs, nil }
func (f *fakeTarget) Data(context.Context) (*evidence.Corpus, error)      { return f.data, nil }
func (f *fakeTarget) StoreFormat() evidence.StoreFormat                   { return evidence.FormatProsodyDat }
func (f *fakeTarget) Advance(context.Context, time.Duration) error {
	return fmt.Errorf("%w: fake clock", target.ErrUnsupported)
}
func (f *fakeTarget) Now() time.Time { return time.Now() }

var testPassword = regexp.MustCompile(`hunter2-[0-9a-z-]+|\bpw-[0-9a-f]{10,}|new-owner-pw-[0-9a-f]+|not-a-password-[0-9a-f]+`)

func defaultPolicy(t testing.TB) *spec.Policy {
	t.Helper()
	p, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkOne tests one claim of the default policy against tg.
func checkOne(t *testing.T, tg target.Target, id spec.ClaimID, timeout time.Duration) report.Result {
	t.Helper()
	r, err := prepare(Config{Policy: defaultPolicy(t), Target: tg, Timeout: timeout, IOTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout+5*time.Second)
	defer cancel()
	res := checkClaim(ctx, r, id)
	// Test passwords: "hunter2-…" (fake targets), "pw-<hex>" (embedded and
	// container targets), UniqueName("pw"), "new-owner-pw-…",
	// "not-a-password-…".
	text := res.Transcript
	for _, e := range res.Evidence {
		text += e.Observed
		for _, h := range e.Hits {
			text += h.Context
		}
	}
	if m := testPassword.FindString(text); m != "" {
		t.Errorf("%s: transcript or evidence holds a test password (%s…)", id, m[:6])
	}
	return res
}

func (f *fakeTarget) CreateAccount(context.Context, target.Account) error {
	return target.ErrUnsupported
}
