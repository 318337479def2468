package conformance

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/internal/fakeserver"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// tlsTarget starts fake c2s (STARTTLS), c2s direct TLS and s2s servers.
func tlsTarget(t *testing.T, opts ...fakeserver.Option) *fakeTarget {
	acct := target.Account{User: "alice", Password: "hunter2-" + UniqueName("pw")}
	opts = append([]fakeserver.Option{fakeserver.WithUser(acct.User, acct.Password)}, opts...)
	c2s := fakeserver.Start(t, opts...)
	direct := fakeserver.Start(t, append(opts, fakeserver.WithDirectTLS())...)
	s2s := fakeserver.Start(t, opts...)
	return &fakeTarget{
		addrs:    target.Addrs{C2S: c2s.Addr(), C2STLS: direct.Addr(), S2S: s2s.Addr()},
		caps:     map[spec.Capability]bool{spec.CapAccounts: true},
		accounts: []target.Account{acct},
	}
}

func TestTLSClaimsBothWays(t *testing.T) {
	tls10 := fakeserver.WithTLSVersions(tls.VersionTLS10, tls.VersionTLS13)
	tests := []struct {
		name string
		opts []fakeserver.Option
		want map[spec.ClaimID]report.Verdict
	}{
		{"compliant", nil, map[spec.ClaimID]report.Verdict{
			spec.TLSC2SRequired: report.Pass, spec.TLSC2SMinVersion: report.Pass, spec.TLSS2SMinVersion: report.Pass}},
		{"TLS 1.0 allowed", []fakeserver.Option{tls10}, map[spec.ClaimID]report.Verdict{
			spec.TLSC2SRequired: report.Pass, spec.TLSC2SMinVersion: report.Fail, spec.TLSS2SMinVersion: report.Fail}},
		{"no TLS 1.3", []fakeserver.Option{fakeserver.WithTLSVersions(tls.VersionTLS12, tls.VersionTLS12)}, map[spec.ClaimID]report.Verdict{
			spec.TLSC2SRequired: report.Pass, spec.TLSC2SMinVersion: report.Fail}},
		{"authentication before TLS", []fakeserver.Option{fakeserver.WithPlaintextAuth()}, map[spec.ClaimID]report.Verdict{
			spec.TLSC2SRequired: report.Fail, spec.TLSC2SMinVersion: report.Pass}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := tlsTarget(t, tt.opts...)
			for id, want := range tt.want {
				tg.next = 0
				res := checkOne(t, tg, id, 10*time.Second)
				if res.Verdict != want {
					t.Errorf("%s: verdict %s (%s), want %s\n%s", id, res.Verdict, res.Reason, want, res.Transcript)
				}
				if len(res.Evidence) == 0 {
					t.Errorf("%s: no evidence", id)
				}
			}
		})
	}
}

// TestTLSExactOutcomes (issue 9, items 3, 8 and 10): each way a server may
// answer decides the verdict by what it proved. A pre-TLS <auth/> that is
// ignored, answered with a stream error or a reset accepted nothing
// (pass); with no real account a <not-authorized/> to made-up credentials
// proves no refusal (not-testable); a ClientHello below the floor answered
// by closing the connection is a refusal, while silence there proves
// nothing (error); a stream error after a completed s2s handshake does not
// undo the handshake (pass, the stream error recorded apart).
func TestTLSExactOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		opts     []fakeserver.Option
		noAcct   bool
		claim    spec.ClaimID
		want     report.Verdict
		evidence string // an observation that must be there
	}{
		{"pre-TLS auth silently ignored", []fakeserver.Option{fakeserver.WithPreTLSAuth(fakeserver.PreTLSIgnore)}, false,
			spec.TLSC2SRequired, report.Pass, "no <success/> had come"},
		{"pre-TLS auth silently ignored, no account", []fakeserver.Option{fakeserver.WithPreTLSAuth(fakeserver.PreTLSIgnore)}, true,
			spec.TLSC2SRequired, report.Pass, "no <success/> had come"},
		{"pre-TLS auth ended with a stream error", []fakeserver.Option{fakeserver.WithPreTLSAuth(fakeserver.PreTLSStreamError)}, false,
			spec.TLSC2SRequired, report.Pass, "stream error"},
		{"pre-TLS auth answered by a reset", []fakeserver.Option{fakeserver.WithPreTLSAuth(fakeserver.PreTLSReset)}, false,
			spec.TLSC2SRequired, report.Pass, "closed the stream"},
		{"pre-TLS not-authorized to the correct password", []fakeserver.Option{fakeserver.WithPreTLSAuth(fakeserver.PreTLSNotAuthorized)}, false,
			spec.TLSC2SRequired, report.Pass, "correct password"},
		{"pre-TLS not-authorized to made-up credentials", []fakeserver.Option{fakeserver.WithPreTLSAuth(fakeserver.PreTLSNotAuthorized)}, true,
			spec.TLSC2SRequired, report.NotTestable, "not a proof"},
		{"below the floor: connection closed without TLS", []fakeserver.Option{fakeserver.WithOldHello(fakeserver.OldHelloClose)}, false,
			spec.TLSC2SMinVersion, report.Pass, "closed the connection after the ClientHello"},
		{"below the floor: no answer", []fakeserver.Option{fakeserver.WithOldHello(fakeserver.OldHelloStall)}, false,
			spec.TLSC2SMinVersion, report.Error, ""},
		{"s2s: stream error after a completed handshake", []fakeserver.Option{fakeserver.WithS2SStreamErrorAfterTLS()}, false,
			spec.TLSS2SMinVersion, report.Pass, "not-authorized"},
		{"s2s: stream error after a completed TLS 1.0 handshake", []fakeserver.Option{fakeserver.WithS2SStreamErrorAfterTLS(),
			fakeserver.WithTLSVersions(tls.VersionTLS10, tls.VersionTLS13)}, false, spec.TLSS2SMinVersion, report.Fail, "accepted below the floor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := tlsTarget(t, tt.opts...)
			if tt.noAcct {
				tg.caps = nil
			}
			res := checkOneIO(t, tg, tt.claim, 8*time.Second, time.Second)
			if res.Verdict != tt.want {
				t.Fatalf("%s: verdict %s (%s), want %s\n%v\n%s", tt.claim, res.Verdict, res.Reason, tt.want, res.Evidence, res.Transcript)
			}
			if tt.evidence == "" {
				return
			}
			found := false
			for _, e := range res.Evidence {
				found = found || strings.Contains(e.Observed, tt.evidence)
			}
			if !found {
				t.Errorf("no observation says %q: %v", tt.evidence, res.Evidence)
			}
		})
	}
}

// checkOneIO is checkOne with an I/O timeout shorter than the claim's, so
// that a server's silence ends one read, not the claim's whole budget.
func checkOneIO(t *testing.T, tg target.Target, id spec.ClaimID, timeout, io time.Duration) report.Result {
	t.Helper()
	r, err := prepare(Config{Policy: defaultPolicy(t), Target: tg, Timeout: timeout, IOTimeout: io})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout+5*time.Second)
	defer cancel()
	return checkClaim(ctx, r, id)
}

func TestTLSRequiredWithoutAccounts(t *testing.T) {
	tg := tlsTarget(t, fakeserver.WithPlaintextAuth())
	tg.caps = nil
	// Made-up credentials cannot log in, but offering mechanisms before TLS
	// is still caught.
	res := checkOne(t, tg, spec.TLSC2SRequired, 10*time.Second)
	if res.Verdict != report.Fail || !strings.Contains(res.Reason, "SASL mechanisms before TLS") {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Reason)
	}
}

// TestHostileServers: a server that never answers, sends garbage, drops
// TLS mid-handshake, or is not there ends in error with a clear message,
// within the timeout: never a hang, never a pass.
func TestHostileServers(t *testing.T) {
	closed := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	tests := []struct {
		name string
		addr func(t *testing.T) string
		want string
	}{
		{"silent", func(t *testing.T) string { return fakeserver.Start(t, fakeserver.WithMode(fakeserver.Silent)).Addr() }, "no response"},
		{"garbage", func(t *testing.T) string { return fakeserver.Start(t, fakeserver.WithMode(fakeserver.Garbage)).Addr() }, "protocol violation"},
		{"drops TLS", func(t *testing.T) string { return fakeserver.Start(t, fakeserver.WithMode(fakeserver.DropTLS)).Addr() }, "could not prove the floor|STARTTLS does not complete"},
		{"not there", closed, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr(t)
			tg := &fakeTarget{addrs: target.Addrs{C2S: addr, C2STLS: addr, S2S: addr}}
			for _, id := range []spec.ClaimID{spec.TLSC2SRequired, spec.TLSC2SMinVersion, spec.TLSS2SMinVersion} {
				done := make(chan report.Result, 1)
				go func() { done <- checkOne(t, tg, id, 2*time.Second) }()
				select {
				case res := <-done:
					if res.Verdict != report.Error {
						t.Errorf("%s: verdict %s (%s), want error", id, res.Verdict, res.Reason)
					}
					if !regexp.MustCompile(tt.want).MatchString(res.Reason) {
						t.Errorf("%s: reason %q lacks %q", id, res.Reason, tt.want)
					}
				case <-time.After(time.Minute): // a hang, not a timing assertion
					t.Fatalf("%s: the check hung", id)
				}
			}
		})
	}
}

// TestHostileServersEveryClaim: against each hostile server every claim
// ends in error or not-testable — never a pass, never a fail, never a hang.
func TestHostileServersEveryClaim(t *testing.T) {
	modes := map[string]fakeserver.Mode{"silent": fakeserver.Silent, "garbage": fakeserver.Garbage, "drops TLS": fakeserver.DropTLS}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			addr := fakeserver.Start(t, fakeserver.WithMode(mode)).Addr()
			tg := &fakeTarget{
				addrs: target.Addrs{C2S: addr, C2STLS: addr, S2S: addr, HTTP: addr},
				caps:  map[spec.Capability]bool{spec.CapAccounts: true, spec.CapEvidence: true, spec.CapClock: true},
			}
			for i := range 20 {
				tg.accounts = append(tg.accounts, target.Account{User: fmt.Sprintf("u%d", i), Password: "hunter2-x"})
			}
			for _, id := range spec.ClaimIDs() {
				tg.next = 0
				done := make(chan report.Result, 1)
				go func() { done <- checkOne(t, tg, id, 2*time.Second) }()
				select {
				case res := <-done:
					if res.Verdict != report.Error && res.Verdict != report.NotTestable {
						t.Errorf("%s: verdict %s (%s), want error", id, res.Verdict, res.Reason)
					}
				case <-time.After(2 * time.Minute): // a hang, not a timing assertion
					t.Fatalf("%s: the check hung", id)
				}
			}
		})
	}
}
