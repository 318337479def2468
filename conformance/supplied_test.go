package conformance

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

// TestSuppliedAccountsSurvive (issue 12, item 1): every claim run against
// a remote target with supplied accounts — with and without --ibr — leaves
// those accounts as they were: they still exist, log in with their
// password, and keep their vCard and an empty roster. The claims that
// remove an account get IBR throwaways (named as such) or are
// not-testable.
func TestSuppliedAccountsSurvive(t *testing.T) {
	pol := defaultPolicy(t)
	// IBR from one address is rate-limited by the policy; the throwaways
	// of every claim come from 127.0.0.1.
	serverPol := withParam(t, pol, spec.RegistrationRateLimited, "max", spec.Value{Type: spec.TypeCount, Count: 1000})
	emb := startEmbedded(t, serverPol)
	ctx := context.Background()
	srv := emb.Server()
	supplied := []target.Account{{User: "alice", Password: "s3cret-alice"}, {User: "bob", Password: "s3cret-bob"}}
	const fn = "Alice, supplied by the operator"
	for _, a := range supplied {
		if err := srv.CreateUser(ctx, a.User, a.Password); err != nil {
			t.Fatal(err)
		}
	}
	addrs := emb.Addrs()
	c, err := xmppclient.Connect(ctx, addrs.C2S, "alice", "s3cret-alice", xmppclient.WithDomain("localhost"), xmppclient.WithInsecureSkipVerify())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetVCard(ctx, xmppclient.VCard{FN: fn}); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)

	for _, ibr := range []bool{false, true} {
		opts := []target.RemoteOption{target.WithRemoteAddrs(target.Addrs{C2STLS: addrs.C2STLS, S2S: addrs.S2S})}
		for _, a := range supplied {
			opts = append(opts, target.WithAccount(a))
		}
		if ibr {
			opts = append(opts, target.WithIBR())
		}
		rt := target.NewRemote(addrs.C2S, "localhost", opts...)
		for _, id := range spec.ClaimIDs() {
			res := checkOne(t, rt, id, 20*time.Second)
			t.Logf("ibr=%v %s: %s %s", ibr, id, res.Verdict, res.Reason)
			if !ibr && (id == spec.AccountSelfDeletion || id == spec.AccountAddressReuse) && res.Verdict != report.NotTestable {
				t.Errorf("%s without --ibr and with supplied accounts only: %s (%s), want not-testable", id, res.Verdict, res.Reason)
			}
			if ibr && id == spec.AuthBruteForce && !strings.Contains(res.Transcript, "throwaway account") {
				t.Errorf("%s with --ibr locks out a supplied account rather than a throwaway one", id)
			}
			if ibr && id == spec.AccountAddressReuse && (res.Verdict != report.Pass || !strings.Contains(res.Transcript, "throwaway account")) {
				t.Errorf("%s with --ibr: %s (%s), want pass on throwaway accounts", id, res.Verdict, res.Reason)
			}
			// A remote target's data cannot be read, so the removal's
			// at-rest part is not examined: never a pass.
			if ibr && id == spec.AccountSelfDeletion && res.Verdict != report.NotTestable {
				t.Errorf("%s with --ibr on a remote target: %s (%s), want not-testable (its data channel is missing)", id, res.Verdict, res.Reason)
			}
		}
		users, err := srv.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range supplied {
			if !slices.Contains(users, a.User) {
				t.Fatalf("ibr=%v: supplied account %s was deleted (users left: %v)", ibr, a.User, users)
			}
			c, err := xmppclient.Connect(ctx, addrs.C2S, a.User, a.Password, xmppclient.WithDomain("localhost"), xmppclient.WithInsecureSkipVerify())
			if err != nil {
				t.Fatalf("ibr=%v: supplied account %s no longer logs in: %v", ibr, a.User, err)
			}
			roster, err := c.Roster(ctx)
			if err != nil || len(roster) != 0 {
				t.Errorf("ibr=%v: roster of %s changed: %v %v", ibr, a.User, roster, err)
			}
			if a.User == "alice" {
				v, err := c.GetVCard(ctx, "")
				if err != nil || v.FN != fn {
					t.Errorf("ibr=%v: alice's vCard changed: %q %v", ibr, v.FN, err)
				}
			}
			c.Close(ctx)
		}
		for _, u := range users {
			if !slices.Contains([]string{"alice", "bob"}, u) {
				t.Errorf("ibr=%v: account %s left behind", ibr, u)
			}
		}
	}
}

// TestThrowawayRefusedIsNotTestable: a remote server with --ibr whose
// registration limit the run's own throwaway accounts spend (the JabberX
// policy's 5 an hour from one address, and every throwaway comes from
// 127.0.0.1) refuses a throwaway with a stanza error. The claims that
// needed it were not examined: not-testable with the server's answer,
// never an error (the harness worked) and never a pass.
func TestThrowawayRefusedIsNotTestable(t *testing.T) {
	pol := defaultPolicy(t)
	emb := startEmbedded(t, pol)
	ctx := context.Background()
	addrs := emb.Addrs()
	if err := emb.Server().CreateUser(ctx, "alice", "s3cret-alice"); err != nil {
		t.Fatal(err)
	}
	rt := target.NewRemote(addrs.C2S, "localhost", target.WithRemoteAddrs(target.Addrs{C2STLS: addrs.C2STLS}),
		target.WithAccount(target.Account{User: "alice", Password: "s3cret-alice"}), target.WithIBR())
	refused := 0
	for _, id := range []spec.ClaimID{spec.AccountSelfDeletion, spec.AccountAddressReuse, spec.AccountSelfDeletion, spec.AccountAddressReuse} {
		res := checkOne(t, rt, id, 20*time.Second)
		t.Logf("%s: %s %s", id, res.Verdict, res.Reason)
		switch {
		case res.Verdict == report.Error:
			t.Errorf("%s: error (%s): a refused throwaway registration is not a harness failure", id, res.Reason)
		case res.Verdict == report.NotTestable && strings.Contains(res.Reason, "refused to register a throwaway"):
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no throwaway registration was refused: the control (the policy's registration limit) did not bite, so the test proved nothing")
	}
}
