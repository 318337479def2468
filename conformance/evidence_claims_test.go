package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/internal/fakeserver"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

// startEmbedded starts a reference server configured from serverPol.
func startEmbedded(t *testing.T, serverPol *spec.Policy) *target.Embedded {
	t.Helper()
	emb, err := target.NewEmbedded(serverPol)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := emb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close(ctx) })
	return emb
}

// checkWith tests claim id of the policy tested against tg.
func checkWith(t *testing.T, tested *spec.Policy, tg target.Target, id spec.ClaimID) report.Result {
	t.Helper()
	r, err := prepare(Config{Policy: tested, Target: tg, Timeout: 30 * time.Second, IOTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
	defer cancel()
	return checkClaim(ctx, r, id)
}

func durationValue(d time.Duration) spec.Value {
	return spec.Value{Type: spec.TypeDuration, Duration: d}
}

// TestNoClientIPAllowNone (issue 9, item 2): the reference server logs
// the address of a failed login. A policy allowing that (allow:
// [failed-login]) passes it; a policy allowing nothing (allow: []) fails
// it, the failed-login address's lines judged like every other.
func TestNoClientIPAllowNone(t *testing.T) {
	pol := defaultPolicy(t)
	emb := startEmbedded(t, pol)
	for _, tc := range []struct {
		allow []string
		want  report.Verdict
	}{
		{[]string{"failed-login"}, report.Pass},
		{nil, report.Fail},
	} {
		tested := withParam(t, pol, spec.PrivacyNoClientIP, "allow", spec.Value{Type: spec.TypeFieldList, Fields: tc.allow})
		res := checkWith(t, tested, emb, spec.PrivacyNoClientIP)
		if res.Verdict != tc.want {
			t.Errorf("allow %v: %s (%s), want %s", tc.allow, res.Verdict, res.Reason, tc.want)
		}
		if tc.want == report.Fail && !strings.Contains(res.Reason, "client address in the logs") {
			t.Errorf("allow %v: the failure is not the logged address: %s", tc.allow, res.Reason)
		}
	}
}

// lacking is the embedded server declaring that it lacks some channels.
type lacking struct {
	*target.Embedded
	caps []spec.Capability
}

func (l *lacking) Has(c spec.Capability) (bool, string) {
	for _, x := range l.caps {
		if x == c {
			return false, "declared missing by the test"
		}
	}
	return l.Embedded.Has(c)
}

// TestMissingDataIsNotAPass (issue 9, item 4): without the data channel
// the at-rest parts of account.self-deletion, offline.retention and
// upload.retention are not examined, so the claims are not-testable
// naming the part — never a pass.
func TestMissingDataIsNotAPass(t *testing.T) {
	pol := defaultPolicy(t)
	tg := &lacking{Embedded: startEmbedded(t, pol), caps: []spec.Capability{spec.CapData, spec.CapEvidence}}
	for _, id := range []spec.ClaimID{spec.AccountSelfDeletion, spec.OfflineRetention, spec.UploadRetention} {
		res := checkWith(t, pol, tg, id)
		if res.Verdict != report.NotTestable || !strings.Contains(res.Reason, "data channel") {
			t.Errorf("%s: %s (%s), want not-testable naming the data channel", id, res.Verdict, res.Reason)
		}
	}
	// Neither logs nor data: nothing of these claims can be examined, and
	// the server is not touched (no session, no failed login).
	none := &lacking{Embedded: tg.Embedded, caps: []spec.Capability{spec.CapData, spec.CapLogs, spec.CapEvidence}}
	for _, id := range []spec.ClaimID{spec.PrivacyNoClientIP, spec.PrivacyNoMessageHistory} {
		res := checkWith(t, pol, none, id)
		if res.Verdict != report.NotTestable || !strings.Contains(res.Reason, "logs channel") || strings.Contains(res.Transcript, "<auth") {
			t.Errorf("%s: %s (%s), want not-testable without a login\n%s", id, res.Verdict, res.Reason, res.Transcript)
		}
	}
}

// plainStore is the embedded server seen through a target that names no
// store format and whose data holds every account's password in a table:
// a server keeping plain passwords in an SQL database.
type plainStore struct {
	*target.Embedded
	mu    sync.Mutex
	table []string
}

func (p *plainStore) NewAccount(ctx context.Context, hint string) (target.Account, error) {
	a, err := p.Embedded.NewAccount(ctx, hint)
	p.mu.Lock()
	p.table = append(p.table, fmt.Sprintf("INSERT INTO users VALUES ('%s', '%s');", a.User, a.Password))
	p.mu.Unlock()
	return a, err
}

func (p *plainStore) PlainData(ctx context.Context) (*evidence.Corpus, error) {
	c, err := p.Embedded.PlainData(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	sql := evidence.NewCorpus(0)
	if err := sql.Add("data:users.sql", []byte(strings.Join(p.table, "\n"))); err != nil {
		return nil, err
	}
	return evidence.Merge(c, sql), nil
}

func (p *plainStore) StoreFormat() evidence.StoreFormat { return "" }

// TestNotTestableDoesNotHideAFailure (issue 9, item 7): without a store
// format the stored keys cannot be parsed, but the password is still
// searched for, and found; and a server not offering the policy's
// SCRAM-<hash> fails, since the claim says it is offered.
func TestNotTestableDoesNotHideAFailure(t *testing.T) {
	pol := defaultPolicy(t)
	res := checkWith(t, pol, &plainStore{Embedded: startEmbedded(t, pol)}, spec.AuthSCRAMStorage)
	if res.Verdict != report.Fail || !strings.Contains(res.Reason, "the password in the stored data") {
		t.Errorf("plain passwords in a database: %s (%s), want fail", res.Verdict, res.Reason)
	}
	// The reference server offers SCRAM-SHA-1 and SCRAM-SHA-256.
	tested := withParam(t, pol, spec.AuthSCRAMStorage, "hash", spec.Value{Type: spec.TypeHash, Hash: spec.HashSHA512})
	emb := startEmbedded(t, pol)
	for name, tg := range map[string]target.Target{"no store format": &noFormat{emb}, "store format": emb} {
		res := checkWith(t, tested, tg, spec.AuthSCRAMStorage)
		if res.Verdict != report.Fail || !strings.Contains(res.Reason, "SCRAM-SHA-512 offered") {
			t.Errorf("%s, SCRAM-SHA-512 not offered: %s (%s), want fail", name, res.Verdict, res.Reason)
		}
	}
}

type noFormat struct{ *target.Embedded }

func (noFormat) StoreFormat() evidence.StoreFormat { return "" }

// credentialCommand is the embedded server with an evidence.credentials
// command: its records converted to the neutral line format, plus extra
// lines.
type credentialCommand struct {
	*target.Embedded
	extra func(users []target.Account) string
	mu    sync.Mutex
	users []target.Account
}

func (c *credentialCommand) NewAccount(ctx context.Context, hint string) (target.Account, error) {
	a, err := c.Embedded.NewAccount(ctx, hint)
	c.mu.Lock()
	c.users = append(c.users, a)
	c.mu.Unlock()
	return a, err
}

func (c *credentialCommand) StoreFormat() evidence.StoreFormat { return "" }

func (c *credentialCommand) Credentials(ctx context.Context) (*evidence.Corpus, error) {
	var buf bytes.Buffer
	if err := c.Server().DumpCredentials(&buf); err != nil {
		return nil, err
	}
	ref := evidence.NewCorpus(0)
	ref.Add("export", buf.Bytes())
	creds, err := evidence.ParseSCRAM(evidence.FormatReference, ref)
	if err != nil {
		return nil, err
	}
	lines := []string{"# converted from the reference export"}
	for _, cr := range creds {
		lines = append(lines, evidence.FormatRecordLine(cr))
	}
	c.mu.Lock()
	lines = append(lines, c.extra(c.users))
	c.mu.Unlock()
	out := evidence.NewCorpus(0)
	return out, out.Add("credentials:dump-credentials", []byte(strings.Join(lines, "\n")+"\n"))
}

// TestCredentialsCommand: records from an evidence.credentials command in
// the neutral line format feed auth.scram-storage like the built-in
// formats: SCRAM records that verify pass; a PLAIN record fails; output
// that does not parse makes the records not examined, naming the line.
func TestCredentialsCommand(t *testing.T) {
	pol := defaultPolicy(t)
	emb := startEmbedded(t, pol)
	for _, tc := range []struct {
		name  string
		extra func([]target.Account) string
		want  report.Verdict
		in    string
	}{
		{"scram records", func([]target.Account) string { return "" }, report.Pass, ""},
		{"a plain record", func(us []target.Account) string {
			return fmt.Sprintf("user=%s mechanism=PLAIN password=raw:%s", us[len(us)-1].User, us[len(us)-1].Password)
		}, report.Fail, "holds the password itself"},
		{"garbage", func([]target.Account) string { return "user=x mechanism=SCRAM-SHA-1 iterations=lots" }, report.NotTestable, "credentials:dump-credentials line "},
	} {
		tg := &credentialCommand{Embedded: emb, extra: tc.extra}
		res := checkWith(t, pol, tg, spec.AuthSCRAMStorage)
		if res.Verdict != tc.want || !strings.Contains(res.Reason, tc.in) {
			t.Errorf("%s: %s (%s), want %s with %q", tc.name, res.Verdict, res.Reason, tc.want, tc.in)
		}
		if tc.want == report.Pass && !hasEvidence(res, "evidence.credentials") {
			t.Errorf("%s: the records did not come from the command: %v", tc.name, res.Evidence)
		}
	}
}

func hasEvidence(res report.Result, sub string) bool {
	for _, e := range res.Evidence {
		if strings.Contains(e.What+" "+e.Observed, sub) {
			return true
		}
	}
	return false
}

// TestRetentionReadings (issue 9, item 12): max_age is "gone after" (a
// server deleting earlier keeps it); min_age adds "kept until" (the same
// server breaks it). Each parameter value flips the verdict.
func TestRetentionReadings(t *testing.T) {
	pol := defaultPolicy(t)
	for _, tc := range []struct {
		claim   spec.ClaimID
		server  time.Duration // what the server keeps
		maxAge  time.Duration
		minAge  time.Duration // 0: not given
		verdict report.Verdict
	}{
		{spec.OfflineRetention, 3 * 24 * time.Hour, 7 * 24 * time.Hour, 0, report.Pass},
		{spec.OfflineRetention, 3 * 24 * time.Hour, 7 * 24 * time.Hour, 7 * 24 * time.Hour, report.Fail},
		{spec.OfflineRetention, 7 * 24 * time.Hour, 7 * 24 * time.Hour, 7 * 24 * time.Hour, report.Pass},
		{spec.OfflineRetention, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 0, report.Fail},
		{spec.UploadRetention, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 0, report.Pass},
		{spec.UploadRetention, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 14 * 24 * time.Hour, report.Fail},
		{spec.UploadRetention, 14 * 24 * time.Hour, 14 * 24 * time.Hour, 14 * 24 * time.Hour, report.Pass},
	} {
		name := fmt.Sprintf("%s server %s max_age %s min_age %s", tc.claim, spec.FormatDuration(tc.server), spec.FormatDuration(tc.maxAge), spec.FormatDuration(tc.minAge))
		t.Run(name, func(t *testing.T) {
			emb := startEmbedded(t, withParam(t, pol, tc.claim, "max_age", durationValue(tc.server)))
			tested := withParam(t, pol, tc.claim, "max_age", durationValue(tc.maxAge))
			if tc.minAge > 0 {
				tested = withParam(t, tested, tc.claim, "min_age", durationValue(tc.minAge))
			}
			res := checkWith(t, tested, emb, tc.claim)
			if res.Verdict != tc.verdict {
				t.Errorf("%s (%s), want %s", res.Verdict, res.Reason, tc.verdict)
			}
		})
	}
}

// TestGroupChatStated (issue 9, item 11): where the server advertises no
// MUC service, privacy.no-message-history says so in its evidence.
func TestGroupChatStated(t *testing.T) {
	pol := defaultPolicy(t)
	res := checkWith(t, pol, startEmbedded(t, pol), spec.PrivacyNoMessageHistory)
	if res.Verdict != report.Pass || !hasEvidence(res, "no MUC service: group chat not examined") {
		t.Errorf("%s (%s): %v", res.Verdict, res.Reason, res.Evidence)
	}
}

// TestReflectsSession (issue 9, item 9): an XEP-0012 answer is a stored
// connection time only if it could count from the session's logout and
// differs from what a never-connected account gets.
func TestReflectsSession(t *testing.T) {
	for _, tc := range []struct {
		secs, since, ref int64
		refAnswered      bool
		want             bool
	}{
		{2, 3, 0, true, true},      // counts from the logout; a fresh account gets 0
		{2, 3, 0, false, true},     // the fresh account refused (item-not-found): no proof of innocence
		{0, 3, 0, true, false},     // "0 seconds" for every account
		{2, 3, 2, true, false},     // the same for an account that never connected
		{0, 3, 0, false, false},    // 0 cannot count from a logout 2 s before the query
		{900, 3, 0, true, false},   // longer than the session is old: some other time
		{3, 3, 900, true, true},    // the fresh account gets its age: a is told apart
		{901, 3, 900, true, false}, // both count from creation
	} {
		if got := reflectsSession(tc.secs, tc.since, tc.ref, tc.refAnswered); got != tc.want {
			t.Errorf("reflectsSession(%d, %d, %d, %v) = %v", tc.secs, tc.since, tc.ref, tc.refAnswered, got)
		}
	}
}

// TestOwner (issue 9, item 9): a hit is attributed to its owner where the
// store says whose record it is, and to nobody where it does not.
func TestOwner(t *testing.T) {
	const a, b = "del-a-0123456789", "del-b-9876543210"
	for _, tc := range []struct {
		file, line, want string
	}{
		{"data:var/lib/prosody/localhost/offline/del%2da%2d0123456789.list", "body", a},
		{"data:var/lib/prosody/localhost/archive/del%2db%2d9876543210.list", "to del-a-0123456789@localhost", b},
		{"data:var/lib/ejabberd/dump.txt", "{offline_msg,{<<\"" + a + "\">>,<<\"localhost\">>},...}", a},
		{"data:var/lib/ejabberd/dump.txt", "{archive_msg,{<<\"" + b + "\">>,...},<<\"" + a + "@localhost\">>,...}", ""},
		{"data:db.sql", "INSERT INTO vcard VALUES ('x')", ""},
	} {
		if got := owner(evidence.Hit{File: tc.file, LineText: tc.line}, a, b); got != tc.want {
			t.Errorf("%s %q: owner %q, want %q", tc.file, tc.line, got, tc.want)
		}
	}
}

// TestVCardGone (issue 9, item 3): a vCard fetch of a removed account
// counts as "not served" only on item-not-found, service-unavailable or
// an empty vCard; the old vCard is a violation; anything else is an
// error.
func TestVCardGone(t *testing.T) {
	fp := footprint{vcardFN: "old-fn", vcardNote: "old-note"}
	for _, tc := range []struct {
		name    string
		v       xmppclient.VCard
		err     error
		ok, bad bool // observation recorded, and whether it is a violation
	}{
		{"item-not-found", xmppclient.VCard{}, &xmppclient.StanzaError{Type: "cancel", Condition: "item-not-found"}, true, false},
		{"service-unavailable", xmppclient.VCard{}, &xmppclient.StanzaError{Type: "cancel", Condition: "service-unavailable"}, true, false},
		{"empty vCard", xmppclient.VCard{}, nil, true, false},
		{"the old vCard", xmppclient.VCard{FN: "old-fn"}, nil, true, true},
		{"forbidden", xmppclient.VCard{}, &xmppclient.StanzaError{Type: "auth", Condition: "forbidden"}, false, false},
		{"timeout", xmppclient.VCard{}, xmppclient.ErrTimeout, false, false},
		{"someone else's vCard", xmppclient.VCard{FN: "another"}, nil, false, false},
	} {
		e := &Env{}
		err := e.vCardGone(fp, tc.v, tc.err)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if tc.ok && (len(e.obs) != 1 || e.obs[0].OK == tc.bad) {
			t.Errorf("%s: %+v", tc.name, e.obs)
		}
		if !tc.ok && errors.Is(err, errRemoveRefused) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestControlInFileName: a store that names the account only in a file's
// path (Prosody's HOST/accounts/USER.dat) shows the account's marker.
func TestControlInFileName(t *testing.T) {
	c := evidence.NewCorpus(0)
	c.Add("data:var/lib/prosody/localhost/accounts/scram%2d9db20da408.dat", []byte(`return { ["iteration_count"] = 4096; };`))
	e := &Env{Target: &fakeTarget{}}
	if !found(c, e.accountNeedle("scram-9db20da408")) {
		t.Error("the account name in the file's path is not found")
	}
	if found(c, e.accountNeedle("scram-0000000000")) {
		t.Error("another account's name is found")
	}
}

// gatewayLogs is the embedded server as seen behind a container's port
// proxy: the server sees one gateway address for every client, and its
// log shows that address on failed-login lines. stale: the log is an old
// file whose lines never grow.
type gatewayLogs struct {
	*target.Embedded
	stale bool
}

var gateway = netip.MustParseAddr("10.99.0.1")

func (g *gatewayLogs) SeenAddrs(ctx context.Context, local netip.Addr) []netip.Addr {
	return append(g.Embedded.SeenAddrs(ctx, local), gateway)
}

func (g *gatewayLogs) Logs(ctx context.Context) (*evidence.Corpus, error) {
	real, err := g.Embedded.Logs(ctx)
	if err != nil {
		return nil, err
	}
	n := 3
	if !g.stale {
		n = 0
		for _, f := range real.Files {
			n += bytes.Count(f.Data, []byte(`msg="failed login"`))
		}
	}
	c := evidence.NewCorpus(0)
	return c, c.Add("log:stdout", bytes.Repeat([]byte("WARN msg=\"failed login\" addr="+gateway.String()+"\n"), n))
}

// TestSharedAddressMark: where the server sees only a shared gateway
// address and logs no account names, the log control is a failed-login
// line more than before the spec's failed login; an old file holding such
// lines cannot supply it.
func TestSharedAddressMark(t *testing.T) {
	pol := defaultPolicy(t)
	emb := startEmbedded(t, pol)
	for _, tc := range []struct {
		stale bool
		want  report.Verdict
	}{{false, report.Pass}, {true, report.NotTestable}} {
		res := checkWith(t, pol, &gatewayLogs{Embedded: emb, stale: tc.stale}, spec.PrivacyNoClientIP)
		if res.Verdict != tc.want {
			t.Errorf("stale=%v: %s (%s), want %s", tc.stale, res.Verdict, res.Reason, tc.want)
		}
	}
}

// TestLoginGone (issue 9, item 3): a login to a deleted account counts as
// "gone" only on SASL <not-authorized/>; a success is a violation; a
// dropped connection is an error, never compliance.
func TestLoginGone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []fakeserver.Option
		ok    bool // observation recorded (else an error)
		compl bool
	}{
		{"not-authorized", nil, true, true},
		{"still there", []fakeserver.Option{fakeserver.WithUser("gone", "pw-0123456789ab")}, true, false},
		{"TLS dropped", []fakeserver.Option{fakeserver.WithMode(fakeserver.DropTLS)}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeserver.Start(t, tc.opts...)
			e := newEnv(&fakeTarget{addrs: target.Addrs{C2S: s.Addr()}}, defaultPolicy(t), spec.Claim{}, 5*time.Second)
			err := e.loginGone(context.Background(), target.Account{User: "gone", Password: "pw-0123456789ab"}, "login as the removed account")
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if tc.ok && (len(e.obs) != 1 || e.obs[0].OK != tc.compl) {
				t.Errorf("%+v", e.obs)
			}
		})
	}
}

// TestVerdictOrder (issue 9, item 7): fail beats error and not-testable,
// error beats not-testable, not-testable beats pass; nothing observed is
// no pass.
func TestVerdictOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bad   bool // a violation observed
		blind bool // a part not examined
		err   error
		want  report.Verdict
	}{
		{"violation and a blind part", true, true, nil, report.Fail},
		{"violation, then not-testable", true, false, notTestablef("no store format"), report.Fail},
		{"violation, then an error", true, false, errors.New("timeout"), report.Fail},
		{"blind part, then an error", false, true, errors.New("timeout"), report.Error},
		{"blind part", false, true, nil, report.NotTestable},
		{"not-testable", false, false, notTestablef("no upload service"), report.NotTestable},
		{"clean", false, false, nil, report.Pass},
	} {
		e := &Env{}
		e.Observe("something examined", !tc.bad, "seen")
		if tc.blind {
			e.Blind("logs", "none of this spec's markers")
		}
		got, reason := e.result(tc.err, nil)
		if got != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, got, reason, tc.want)
		}
		if tc.blind && got == report.NotTestable && !strings.Contains(reason, "logs: none of this spec's markers") {
			t.Errorf("%s: the reason does not name the part: %s", tc.name, reason)
		}
	}
	if got, _ := (&Env{}).result(nil, nil); got != report.Error {
		t.Errorf("nothing observed: %s", got)
	}
}
