package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
	"github.com/xmppcheck/xmppcheck/spec"
)

// fakeXMPPTarget wraps internal/fakexmpp: a protocol-complete server with
// none of the protections (no lockout, no registration limit), an
// in-memory store (no evidence) and no clock.
type fakeXMPPTarget struct {
	fakeTarget
	srv *fakexmpp.Server
	// storeTimes makes the synthetic store (see Data) hold the time of
	// its reading, as a "last login" record.
	storeTimes bool
	users      []string
}

// Data is a synthetic plaintext store naming every account (and, with
// storeTimes, a last-login time): a test double for the evidence claims.
func (f *fakeXMPPTarget) Data(context.Context) (*evidence.Corpus, error) {
	c := evidence.NewCorpus(0)
	f.mu.Lock()
	body := "accounts: " + strings.Join(f.users, ", ") + "\n"
	f.mu.Unlock()
	if f.storeTimes {
		body += fmt.Sprintf("last_login=%d\n", time.Now().Unix())
	}
	return c, c.Add("data:store.txt", []byte(body))
}

func (f *fakeXMPPTarget) Logs(context.Context) (*evidence.Corpus, error) {
	return evidence.NewCorpus(0), nil
}

func startFakeXMPP(t *testing.T, opts ...fakexmpp.Option) *fakeXMPPTarget {
	t.Helper()
	s := fakexmpp.Start(t, opts...)
	return &fakeXMPPTarget{
		fakeTarget: fakeTarget{addrs: target.Addrs{C2S: s.Addr(), C2STLS: s.TLSAddr()}, caps: map[spec.Capability]bool{spec.CapAccounts: true}},
		srv:        s,
	}
}

func (f *fakeXMPPTarget) NewAccount(ctx context.Context, hint string) (target.Account, error) {
	b := make([]byte, 5)
	rand.Read(b)
	a := target.Account{User: hint + "-" + hex.EncodeToString(b), Password: "hunter2-" + hex.EncodeToString(b), Created: true}
	return a, f.CreateAccount(ctx, a)
}

func (f *fakeXMPPTarget) CreateAccount(_ context.Context, a target.Account) error {
	f.mu.Lock()
	f.users = append(f.users, a.User+"@localhost")
	f.mu.Unlock()
	return f.srv.AddUser(a.User, a.Password)
}

func (f *fakeXMPPTarget) IBR() bool { return true }

func (f *fakeXMPPTarget) Info() report.Target {
	return report.Target{Name: "fakexmpp", Kind: "test"}
}

// TestProtocolClaimsOnAnUnprotectedServer: fakexmpp keeps no archive and
// asks only username and password, but limits neither logins nor
// registrations: exactly those claims fail.
func TestProtocolClaimsOnAnUnprotectedServer(t *testing.T) {
	tg := startFakeXMPP(t)
	for id, want := range map[spec.ClaimID]report.Verdict{
		spec.MAMDisabled:             report.Pass,
		spec.RegistrationMinimalData: report.Pass,
		spec.RegistrationRateLimited: report.Fail,
		spec.AuthBruteForce:          report.Fail,
		spec.UploadUnguessableURL:    report.NotTestable, // no HTTP service
	} {
		res := checkOne(t, tg, id, 20*time.Second)
		if res.Verdict != want {
			t.Errorf("%s: %s (%s), want %s\n%v\n%s", id, res.Verdict, res.Reason, want, res.Evidence, res.Transcript)
		}
	}
}

// TestRegistrationDataForm: a data form (XEP-0077 §4) asking username,
// password and an optional email keeps a policy that allows email as
// optional.
func TestRegistrationDataForm(t *testing.T) {
	tg := startFakeXMPP(t, fakexmpp.WithDataFormRegistration())
	res := checkOne(t, tg, spec.RegistrationMinimalData, 10*time.Second)
	if res.Verdict != report.Pass {
		t.Fatalf("%s: %s\n%s", res.Verdict, res.Reason, res.Transcript)
	}
}

// TestNoConnectionTimesFails: fakexmpp answers XEP-0012 last activity, and
// a store keeping a last-login time is caught by the storage scan.
func TestNoConnectionTimesFails(t *testing.T) {
	for _, storeTimes := range []bool{false, true} {
		tg := startFakeXMPP(t)
		tg.caps[spec.CapData] = true
		tg.caps[spec.CapLogs] = true
		tg.storeTimes = storeTimes
		res := checkOne(t, tg, spec.PrivacyNoConnectionTimes, 20*time.Second)
		if res.Verdict != report.Fail || !strings.Contains(res.Reason, "XEP-0012") {
			t.Fatalf("storeTimes=%v: %s (%s)\n%v", storeTimes, res.Verdict, res.Reason, res.Evidence)
		}
		if got := strings.Contains(res.Reason, "session times in the stored data"); got != storeTimes {
			t.Errorf("storeTimes=%v: stored time detected=%v: %s", storeTimes, got, res.Reason)
		}
	}
}

// TestProtocolExactOutcomes (issue 9, item 3): mam.disabled and
// auth.brute-force-protection pass only on the answers that prove
// compliance; silence, or an answer that is not a refusal, is an error.
func TestProtocolExactOutcomes(t *testing.T) {
	const discoInfo = "http://jabber.org/protocol/disco#info"
	rc, _ := defaultPolicy(t).Claim(spec.RegistrationRateLimited)
	maxReg := rc.Params.Count("max")
	tests := []struct {
		name  string
		opts  []fakexmpp.Option
		claim spec.ClaimID
		want  report.Verdict
		why   string // in the reason or an observation
	}{
		{"MAM: disco#info never answered", []fakexmpp.Option{fakexmpp.WithIQStall(discoInfo)},
			spec.MAMDisabled, report.Error, "no answer"},
		{"MAM: the account's disco#info refused with item-not-found", []fakexmpp.Option{fakexmpp.WithIQError(discoInfo, "bare", "item-not-found")},
			spec.MAMDisabled, report.Pass, "item-not-found"},
		{"MAM: the account's disco#info refused with internal-server-error", []fakexmpp.Option{fakexmpp.WithIQError(discoInfo, "bare", "internal-server-error")},
			spec.MAMDisabled, report.Error, "internal-server-error"},
		{"MAM: archive query answered internal-server-error", []fakexmpp.Option{fakexmpp.WithIQError("urn:xmpp:mam:2", "", "internal-server-error")},
			spec.MAMDisabled, report.Error, "not a refusal"},
		{"MAM: archive query refused with not-allowed", []fakexmpp.Option{fakexmpp.WithIQError("urn:xmpp:mam:2", "", "not-allowed")},
			spec.MAMDisabled, report.Pass, "not-allowed"},
		{"MAM: archive query never answered", []fakexmpp.Option{fakexmpp.WithIQStall("urn:xmpp:mam:2")},
			spec.MAMDisabled, report.Error, "no refusal"},
		{"lockout: temporary-auth-failure to the correct password", []fakexmpp.Option{fakexmpp.WithLockout(fakexmpp.Lockout{After: 5})},
			spec.AuthBruteForce, report.Pass, "temporary-auth-failure"},
		{"lockout: connection closed after accept", []fakexmpp.Option{fakexmpp.WithLockout(fakexmpp.Lockout{After: 5, Mode: fakexmpp.LockoutClose})},
			spec.AuthBruteForce, report.Pass, "closed the connection"},
		{"lockout: policy-violation stream error", []fakexmpp.Option{fakexmpp.WithLockout(fakexmpp.Lockout{After: 5, Mode: fakexmpp.LockoutStreamError})},
			spec.AuthBruteForce, report.Pass, "policy-violation"},
		{"lockout: silence is no refusal", []fakexmpp.Option{fakexmpp.WithLockout(fakexmpp.Lockout{After: 5, Mode: fakexmpp.LockoutStall})},
			spec.AuthBruteForce, report.Error, "no answer"},
		{"registration limit: policy-violation", []fakexmpp.Option{fakexmpp.WithRegistrationLimit(maxReg, "policy-violation")},
			spec.RegistrationRateLimited, report.Pass, "policy-violation"},
		{"registration limit: resource-constraint", []fakexmpp.Option{fakexmpp.WithRegistrationLimit(maxReg, "resource-constraint")},
			spec.RegistrationRateLimited, report.Pass, "resource-constraint"},
		{"registration limit: internal-server-error is no refusal", []fakexmpp.Option{fakexmpp.WithRegistrationLimit(maxReg, "internal-server-error")},
			spec.RegistrationRateLimited, report.Error, "not a refusal"},
		{"registration form refused with service-unavailable", []fakexmpp.Option{fakexmpp.WithIQError("jabber:iq:register", "", "service-unavailable")},
			spec.RegistrationMinimalData, report.NotTestable, "no in-band registration"},
		{"registration form answered internal-server-error", []fakexmpp.Option{fakexmpp.WithIQError("jabber:iq:register", "", "internal-server-error")},
			spec.RegistrationMinimalData, report.Error, "internal-server-error"},
		{"lockout: a SASL condition that is no refusal", []fakexmpp.Option{fakexmpp.WithLockout(fakexmpp.Lockout{After: 5, Condition: "malformed-request"})},
			spec.AuthBruteForce, report.Error, "malformed-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := startFakeXMPP(t, tt.opts...)
			res := checkOneIO(t, tg, tt.claim, 15*time.Second, 2*time.Second)
			if res.Verdict != tt.want {
				t.Fatalf("%s: %s (%s), want %s\n%v\n%s", tt.claim, res.Verdict, res.Reason, tt.want, res.Evidence, res.Transcript)
			}
			text := res.Reason
			for _, e := range res.Evidence {
				text += " " + e.Observed
			}
			if !strings.Contains(text, tt.why) {
				t.Errorf("neither the reason nor the evidence says %q: %s", tt.why, text)
			}
		})
	}
}
