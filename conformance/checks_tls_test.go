package conformance

import (
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
		{"drops TLS", func(t *testing.T) string { return fakeserver.Start(t, fakeserver.WithMode(fakeserver.DropTLS)).Addr() }, "dropped the connection|STARTTLS does not complete"},
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
