package conformance

import (
	"context"
	"crypto/tls"
	"maps"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// withParam returns a copy of pol whose claim id has param set to v: the
// reference server configured from it is deliberately non-compliant with
// the unchanged policy the suite tests.
func withParam(t *testing.T, pol *spec.Policy, id spec.ClaimID, param string, v spec.Value) *spec.Policy {
	t.Helper()
	cp := *pol
	cp.Claims = append([]spec.Claim(nil), pol.Claims...)
	for i := range cp.Claims {
		if cp.Claims[i].ID == id {
			cp.Claims[i].Params = maps.Clone(cp.Claims[i].Params)
			cp.Claims[i].Params[param] = v
			return &cp
		}
	}
	t.Fatalf("policy has no claim %s", id)
	return nil
}

// runEmbedded tests ids of the default policy against a reference server
// configured from serverPol.
func runEmbedded(t *testing.T, serverPol *spec.Policy, ids ...spec.ClaimID) map[spec.ClaimID]report.Result {
	t.Helper()
	tg, err := target.NewEmbedded(serverPol)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close(ctx) })
	out := map[spec.ClaimID]report.Result{}
	for _, id := range ids {
		out[id] = checkOne(t, tg, id, 30*time.Second)
	}
	return out
}

// TestEmbeddedCompliant: the reference server configured from the policy
// passes every claim.
func TestEmbeddedCompliant(t *testing.T) {
	pol := defaultPolicy(t)
	res := runEmbedded(t, pol, spec.ClaimIDs()...)
	for id, r := range res {
		if r.Verdict != report.Pass {
			t.Errorf("%s: %s (%s)\n%v", id, r.Verdict, r.Reason, r.Evidence)
		}
	}
}

// TestEmbeddedBroken: a reference server configured from a policy that
// departs from the tested one in one parameter fails exactly that claim.
func TestEmbeddedBroken(t *testing.T) {
	pol := defaultPolicy(t)
	tests := []struct {
		name  string
		claim spec.ClaimID
		param string
		v     spec.Value
	}{
		{"TLS 1.0 accepted", spec.TLSC2SMinVersion, "min", spec.Value{Type: spec.TypeTLSVersion, TLS: tls.VersionTLS10}},
		{"no brute-force limit", spec.AuthBruteForce, "max_failures", spec.Value{Type: spec.TypeCount, Count: 1000}},
		{"offline kept 30 days", spec.OfflineRetention, "max_age", spec.Value{Type: spec.TypeDuration, Duration: 30 * 24 * time.Hour}},
		{"email required", spec.RegistrationMinimalData, "required", spec.Value{Type: spec.TypeFieldList, Fields: []string{"username", "password", "email"}}},
		{"no registration limit", spec.RegistrationRateLimited, "max", spec.Value{Type: spec.TypeCount, Count: 1000}},
	}
	all := spec.ClaimIDs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runEmbedded(t, withParam(t, pol, tt.claim, tt.param, tt.v), all...)
			for id, r := range res {
				want := report.Pass
				if id == tt.claim {
					want = report.Fail
				}
				if r.Verdict != want {
					t.Errorf("%s: %s (%s), want %s", id, r.Verdict, r.Reason, want)
				}
			}
		})
	}
	// The suite's own policy stricter than the server: SCRAM iterations.
	t.Run("fewer iterations than the policy", func(t *testing.T) {
		strict := withParam(t, pol, spec.AuthSCRAMStorage, "min_iterations", spec.Value{Type: spec.TypeCount, Count: 1_000_000})
		tg, err := target.NewEmbedded(pol)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := tg.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer tg.Close(ctx)
		r, err := prepare(Config{Policy: strict, Target: tg, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res := checkClaim(ctx, r, spec.AuthSCRAMStorage)
		if res.Verdict != report.Fail {
			t.Fatalf("%s: %s", res.Verdict, res.Reason)
		}
	})
}
