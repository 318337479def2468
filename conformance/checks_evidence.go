package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

func init() {
	checks[spec.PrivacyNoClientIP] = checkNoClientIP
	checks[spec.PrivacyNoMessageHistory] = checkNoMessageHistory
	checks[spec.StorageEncryptedAtRest] = checkEncryptedAtRest
	checks[spec.OfflineDeleteOnDelivery] = checkOfflineDeleteOnDelivery
	checks[spec.AuthSCRAMStorage] = checkSCRAMStorage
	checks[spec.PrivacyNoConnectionTimes] = checkNoConnectionTimes
}

// from runs f with the spec's client address set to a (restored after).
func (e *Env) from(a netip.Addr, f func() error) error {
	saved := e.local
	e.local = a
	defer func() { e.local = saved }()
	return f()
}

// activity gives a a few ordinary sessions: login, presence, a message to
// b (online) and a roster change, then logout.
func (e *Env) activity(ctx context.Context, a, b target.Account, marker string) error {
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	defer cb.Close(ctx)
	if err := cb.SendPresence(ctx, "", "", ""); err != nil {
		return err
	}
	for i := range 2 {
		ca, err := e.Session(ctx, a)
		if err != nil {
			return err
		}
		if err := ca.SendPresence(ctx, "", "", ""); err != nil {
			return err
		}
		body := fmt.Sprintf("%s session %d", marker, i+1)
		if _, err := ca.SendMessage(ctx, cb.JID(), body); err != nil {
			return err
		}
		if _, err := cb.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Body() == body }); err != nil {
			return fmt.Errorf("message of session %d not delivered: %w", i+1, err)
		}
		if err := ca.SetRosterItem(ctx, xmppclient.RosterItem{JID: e.Bare(b), Name: fmt.Sprintf("contact %d", i)}); err != nil {
			return err
		}
		if err := ca.Close(ctx); err != nil {
			return err
		}
	}
	return nil
}

// checkNoClientIP: after successful sessions from a distinctive address,
// that address — in every form, and as the server saw it — is in no log
// line (except failed-login lines when the policy allows them) and in no
// stored file.
func checkNoClientIP(ctx context.Context, e *Env) error {
	allowFailed := slices.Contains(e.Claim.Params.Fields("allow"), "failed-login")
	acc, err := e.Accounts(ctx, "ip-a", "ip-b")
	if err != nil {
		return err
	}
	a, b := acc[0], acc[1]
	if err := e.activity(ctx, a, b, UniqueName("ip")); err != nil {
		return err
	}
	local := e.local
	seen := e.addressNeedles(ctx, local)
	if len(seen) == 0 {
		return fmt.Errorf("the target cannot say which address the server sees for this client")
	}
	e.Observe("client addresses searched", true, "%s (the spec's own address and what the server sees of it), each in %d forms", names(seen), len(seen[0].Forms))

	// A failed login — from another address where the client can choose
	// its source, else from the same one: the log control (a server that
	// logs failed logins shows that address) and the only address whose
	// failed-login lines the policy may allow.
	var failed netip.Addr
	if local.IsValid() {
		failed = randomLoopback()
	}
	err = e.from(failed, func() error {
		c, err := e.Client(ctx)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		if err := c.Login(ctx, a.User, "wrong-"+UniqueName("pw")); err == nil {
			return errors.New("a wrong password was accepted")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed-login control: %w", err)
	}
	failedSeen := e.Target.SeenAddrs(ctx, failed)

	logs, err := e.logs(ctx)
	if err != nil {
		return err
	}
	controls := []evidence.Needle{e.accountNeedle(a.User)}
	for _, f := range failedSeen {
		controls = append([]evidence.Needle{evidence.AddressNeedle(f)}, controls...)
	}
	switch ctl := logControl(logs, controls...); {
	case logs.Size() == 0:
		e.Observe("logs", true, "empty (%s): nothing logged", strings.Join(logs.Names(), ", "))
	case ctl == nil:
		e.Observe("logs", true, "%d bytes hold neither a failed-login address nor the account name: the server logs nothing of these sessions", logs.Size())
	default:
		e.Observe("logs: positive control", true, "%s found in the logs (%d bytes)", ctl.What, logs.Size())
	}
	// Lines about failed logins may carry an address only where the policy
	// allows it and only for an address that did fail to log in during
	// this spec; any other line naming the client is a violation.
	var kept, allowed []evidence.Hit
	for _, addr := range e.Target.SeenAddrs(ctx, local) {
		hits := logs.Find(evidence.AddressNeedle(addr))
		mayFail := allowFailed && slices.Contains(failedSeen, addr)
		k, al := filterHits(hits, func(h evidence.Hit) bool { return mayFail && failedLoginLine.MatchString(h.LineText) })
		kept, allowed = append(kept, k...), append(allowed, al...)
	}
	e.ObserveHits("client address in the logs", kept, "not found")
	if len(allowed) > 0 {
		e.Observe("client address in failed-login lines", true, "%d line(s), allowed by the policy (e.g. %s)", len(allowed), allowed[0].Context)
	}

	// Control: b's address is certainly stored, in a's roster.
	dataHits, err := e.scanData(ctx, "stored data", e.accountNeedle(b.User), seen...)
	if err != nil {
		return err
	}
	e.ObserveHits("client address in the stored data", dataHits, "not found")
	return nil
}

// checkNoMessageHistory: a message delivered online leaves no trace at
// rest (RFC 6121 §8; no archive, no history). The control is a message to
// an offline account, which the server certainly stores.
func checkNoMessageHistory(ctx context.Context, e *Env) error {
	acc, err := e.Accounts(ctx, "hist-a", "hist-b", "hist-off")
	if err != nil {
		return err
	}
	a, b, off := acc[0], acc[1], acc[2]
	delivered := UniqueName("delivered-body")
	pending := UniqueName("offline-body")
	ca, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	ca.SendPresence(ctx, "", "", "")
	cb.SendPresence(ctx, "", "", "")
	if _, err := ca.SendMessage(ctx, cb.JID(), delivered); err != nil {
		return err
	}
	if _, err := cb.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Body() == delivered }); err != nil {
		return fmt.Errorf("the online message was not delivered: %w", err)
	}
	e.Observe("online message (test)", true, "delivered to %s", e.Bare(b))
	if _, err := ca.SendMessage(ctx, e.Bare(off), pending); err != nil {
		return err
	}
	if _, err := ca.Ping(ctx, ""); err != nil { // the server has processed the message
		return err
	}
	ca.Close(ctx)
	cb.Close(ctx)
	hits, err := e.scanData(ctx, "stored data", evidence.TextNeedle("the pending offline message", pending), evidence.TextNeedle("the delivered message", delivered))
	if err != nil {
		return err
	}
	e.ObserveHits("delivered message in the stored data", hits, "not found")
	logs, err := e.logs(ctx)
	if err != nil {
		return err
	}
	lh := logs.Find(evidence.TextNeedle("the delivered message", delivered))
	e.ObserveHits("delivered message in the logs", lh, fmt.Sprintf("not found in %d bytes of logs", logs.Size()))
	return nil
}

// checkEncryptedAtRest: what users store — a message body (offline), a
// vCard, roster names — appears in plaintext nowhere in the raw data
// directory. Controls: the server demonstrably keeps the data (it serves
// the vCard back, the data directory changed) and, where the target offers
// a decrypted view, the markers are found there.
func checkEncryptedAtRest(ctx context.Context, e *Env) error {
	acc, err := e.Accounts(ctx, "enc-a", "enc-b")
	if err != nil {
		return err
	}
	a, b := acc[0], acc[1]
	before, err := e.Target.Data(ctx)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	body, fn, note, rname := UniqueName("body"), UniqueName("fullname"), UniqueName("vcard-note"), UniqueName("roster-name")
	ca, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	if err := ca.SetVCard(ctx, xmppclient.VCard{FN: fn, Extra: "<NOTE>" + note + "</NOTE>"}); err != nil {
		return fmt.Errorf("set vCard: %w", err)
	}
	if err := ca.SetRosterItem(ctx, xmppclient.RosterItem{JID: e.Bare(b), Name: rname}); err != nil {
		return fmt.Errorf("set roster item: %w", err)
	}
	if _, err := ca.SendMessage(ctx, e.Bare(b), body); err != nil { // b is offline: stored
		return err
	}
	ca.Close(ctx)
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	v, err := cb.GetVCard(ctx, e.Bare(a))
	cb.Close(ctx)
	if err != nil || v.FN != fn {
		return fmt.Errorf("the vCard is not served back (%v): the server may not store it, so its absence at rest proves nothing", err)
	}
	e.Observe("vCard served back (control)", true, "FN %q", fn)
	raw, err := e.Target.Data(ctx)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if raw.Size() == 0 {
		return fmt.Errorf("the data directory is empty (%s): wrong path?", strings.Join(raw.Names(), ", "))
	}
	if fingerprint(before) == fingerprint(raw) {
		return fmt.Errorf("the data directory did not change while the server stored a vCard, a roster item and a message: it is not where the server writes")
	}
	e.Observe("data directory changed while storing (control)", true, "%d files, %d bytes", len(raw.Files), raw.Size())
	markers := []evidence.Needle{
		evidence.TextNeedle("the offline message body", body), evidence.TextNeedle("the vCard full name", fn),
		evidence.TextNeedle("the vCard note", note), evidence.TextNeedle("the roster name", rname),
	}
	if pd, ok := e.Target.(target.PlainDataer); ok {
		plain, err := pd.PlainData(ctx)
		if err != nil {
			return fmt.Errorf("decrypted view: %w", err)
		}
		for _, m := range markers {
			if len(plain.Find(m)) == 0 {
				return fmt.Errorf("positive control failed: %s is not in the decrypted store", m.What)
			}
		}
		e.Observe("markers in the decrypted store (control)", true, "all %d found", len(markers))
	}
	for _, m := range markers {
		e.ObserveHits(m.What+" in the raw data directory", raw.Find(m), "not found in plaintext")
	}
	return nil
}

// checkOfflineDeleteOnDelivery: an offline message is stored until its
// recipient comes online, is delivered once, and is then gone from storage
// (XEP-0160).
func checkOfflineDeleteOnDelivery(ctx context.Context, e *Env) error {
	acc, err := e.Accounts(ctx, "off-a", "off-b")
	if err != nil {
		return err
	}
	a, b := acc[0], acc[1]
	body := UniqueName("offline-body")
	ca, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	if _, err := ca.SendMessage(ctx, e.Bare(b), body); err != nil {
		return err
	}
	if _, err := ca.Ping(ctx, ""); err != nil {
		return err
	}
	ca.Close(ctx)
	needle := evidence.TextNeedle("the offline message", body)
	if _, err := e.scanData(ctx, "stored data before delivery", needle); err != nil {
		return err
	}
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	if err := cb.SendPresence(ctx, "", "", ""); err != nil { // XEP-0160 §4: delivered on initial presence
		return err
	}
	got, err := drain(ctx, cb)
	if err != nil {
		return err
	}
	if !containsAny(bodies(got), body) {
		return fmt.Errorf("the offline message was not delivered on initial presence")
	}
	e.Observe("delivery on initial presence", true, "delivered to %s", e.Bare(b))
	cb.Close(ctx)
	cb2, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	cb2.SendPresence(ctx, "", "", "")
	again, err := drain(ctx, cb2)
	if err != nil {
		return err
	}
	cb2.Close(ctx)
	e.Observe("second login", !containsAny(bodies(again), body), "%s", map[bool]string{true: "the message was delivered AGAIN", false: "not delivered again"}[containsAny(bodies(again), body)])
	c, _, err := e.data(ctx)
	if err != nil {
		return err
	}
	e.ObserveHits("the delivered message in storage", c.Find(needle), "gone")
	return nil
}

// checkSCRAMStorage: SCRAM-SHA-1 (the policy's hash) is offered; the
// account's record at rest holds salt, iteration count (at least the
// policy's), StoredKey and ServerKey that recomputing from the password
// reproduces (RFC 5802 §3); and the password is in no file and no log in
// any encoding.
func checkSCRAMStorage(ctx context.Context, e *Env) error {
	h := e.Claim.Params.Hash("hash")
	minIter := e.Claim.Params.Count("min_iterations")
	a, err := e.Account(ctx, "scram")
	if err != nil {
		return err
	}
	c, err := e.Client(ctx, xmppclient.WithMechanisms("SCRAM-"+h))
	if err != nil {
		return err
	}
	mechs := c.Features().Mechanisms
	e.Observe("SCRAM-"+h+" offered", slices.Contains(mechs, "SCRAM-"+h), "mechanisms: %s", strings.Join(mechs, ", "))
	if err := c.Login(ctx, a.User, a.Password); err != nil && slices.Contains(mechs, "SCRAM-"+h) {
		return fmt.Errorf("SCRAM-%s login: %w", h, err)
	}
	c.Close(ctx)
	format := e.Target.StoreFormat()
	data, _, err := e.data(ctx)
	if err != nil {
		return err
	}
	if format == "" {
		return notTestablef("the target names no store format (evidence.store_format), so credential records cannot be parsed")
	}
	creds, err := evidence.ParseSCRAM(format, data)
	if err != nil {
		return err
	}
	var mine []evidence.Credential
	for _, c := range creds {
		if c.User == a.User {
			mine = append(mine, c)
		}
	}
	if len(mine) == 0 {
		return fmt.Errorf("positive control failed: no %s credential record of %s among %d record(s) in %d file(s)", format, a.User, len(creds), len(data.Files))
	}
	e.Observe("credential records found (control)", true, "%d record(s) of %s in %s", len(mine), a.User, mine[0].File)
	hasPolicyHash := false
	for _, rec := range mine {
		name := "record"
		if rec.Hash != "" {
			name = "SCRAM-" + rec.Hash + " record"
		}
		if rec.Plaintext {
			e.Observe(name, false, "holds the password itself (fields: %s)", strings.Join(rec.Fields, ", "))
			continue
		}
		hh := rec.Hash
		if hh == "" {
			hh = h
		}
		hasPolicyHash = hasPolicyHash || hh == h
		ok, err := rec.Verify(a.Password, hh)
		if err != nil {
			return err
		}
		e.Observe(name+": StoredKey and ServerKey recomputed from the password", ok, "%s", map[bool]string{true: fmt.Sprintf("match (salt %d bytes, %d iterations)", len(rec.Salt), rec.Iterations), false: "do NOT match the record"}[ok])
		e.Observe(name+": iteration count", rec.Iterations >= minIter, "%d (policy minimum %d)", rec.Iterations, minIter)
	}
	e.Observe("a SCRAM-"+h+" record at rest", hasPolicyHash, "%s", map[bool]string{true: "present", false: "absent: the keys are not stored for the policy's hash"}[hasPolicyHash])
	pw := evidence.PasswordNeedle(a.Password)
	e.ObserveHits("the password in the stored data", data.Find(pw), fmt.Sprintf("in none of %d forms", len(pw.Forms)))
	logs, err := e.logs(ctx)
	if err != nil {
		return err
	}
	e.ObserveHits("the password in the logs", logs.Find(pw), fmt.Sprintf("in none of %d forms (%d bytes of logs)", len(pw.Forms), logs.Size()))
	return nil
}

// timeInLine recognises a time of day, a date or a Unix time in a log line.
var timeInLine = regexp.MustCompile(`\b\d{1,2}:\d{2}:\d{2}\b|\b\d{4}-\d{2}-\d{2}\b|\b1[0-9]{9}\b|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2}\b`)

// connectionWords mark log lines about sessions starting or ending.
var connectionWords = []string{"auth", "login", "logout", "log in", "log out", "connect", "session", "online", "offline", "bound", "resource", "closed"}

// checkNoConnectionTimes: neither XEP-0012 nor storage reveals when an
// account was connected. A subscribed contact asks for the account's last
// activity after it logs out; the stored data is searched for the times of
// the session; log lines naming the account and a session event are the
// server storing a connection time.
func checkNoConnectionTimes(ctx context.Context, e *Env) error {
	acc, err := e.Accounts(ctx, "times-a", "times-b")
	if err != nil {
		return err
	}
	a, b := acc[0], acc[1]
	// Mutual subscription, so that XEP-0012 §4 lets b ask about a.
	ca, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	cb.SendPresence(ctx, "", "", "")
	ca.SendPresence(ctx, "", "", "")
	if err := cb.Subscribe(ctx, e.Bare(a)); err != nil {
		return err
	}
	if _, err := ca.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "presence" && strings.Contains(s.Raw, "subscribe") }); err != nil {
		return fmt.Errorf("subscription request not delivered: %w", err)
	}
	if err := ca.ApproveSubscription(ctx, e.Bare(b)); err != nil {
		return err
	}
	ca.Close(ctx)
	// The session whose times must not be kept starts well clear of the
	// seconds in which the accounts and their roster items were written:
	// servers may date those rows (ejabberd's SQL schema gives users and
	// rosterusers a created_at), and creation times are not connection
	// times. The scan window below is the session's seconds ±1 s, so a
	// 3 s pause leaves room for writes that land just after the approval.
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	start := time.Now()
	ca, err = e.Session(ctx, a)
	if err != nil {
		return err
	}
	ca.SendPresence(ctx, "", "", "")
	ca.Ping(ctx, "")
	ca.Close(ctx)
	end := time.Now()
	la, err := cb.LastActivity(ctx, e.Bare(a))
	var se *xmppclient.StanzaError
	switch {
	case errors.As(err, &se):
		e.Observe("XEP-0012 last activity of the account", true, "refused: %s/%s", se.Type, se.Condition)
	case err != nil:
		return fmt.Errorf("last activity query: %w", err)
	default:
		e.Observe("XEP-0012 last activity of the account", false, "answered: %d seconds since logout", la.Seconds)
	}
	cb.Close(ctx)
	hits, err := e.scanData(ctx, "stored data", e.accountNeedle(a.User), timestampNeedle(start.Add(-time.Second), end.Add(time.Second)))
	if err != nil {
		return err
	}
	e.ObserveHits("session times in the stored data", hits, "not found")
	logs, err := e.logs(ctx)
	if err != nil {
		return err
	}
	// A log line naming the account and a session event stores a
	// connection time only if the line carries a time.
	var lines []evidence.Hit
	untimed := 0
	for _, h := range logs.Find(e.accountNeedle(a.User)) {
		l := strings.ToLower(h.LineText)
		if !slices.ContainsFunc(connectionWords, func(w string) bool { return strings.Contains(l, w) }) {
			continue
		}
		if timeInLine.MatchString(h.LineText) {
			lines = append(lines, h)
		} else {
			untimed++
		}
	}
	if untimed > 0 {
		e.Observe("log lines naming the account's sessions without a time", true, "%d line(s): no time is recorded in them", untimed)
	}
	e.ObserveHits("timed log lines recording the account's sessions", lines, fmt.Sprintf("none in %d bytes of logs", logs.Size()))
	return nil
}
