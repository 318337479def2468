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
	"github.com/xmppcheck/xmppcheck/internal/ns"
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

// judge records a negative scan of corpus for n. A hit is a violation
// whether or not the corpus passed its positive control (what is found is
// found); no hit counts as clean only when it did (ok).
func (e *Env) judge(what string, corpus *evidence.Corpus, ok bool, n evidence.Needle, clean string) {
	if corpus == nil {
		return
	}
	e.judgeHits(what, corpus, ok, corpus.Find(n), clean)
}

// judgeHits is judge for hits already found in corpus.
func (e *Env) judgeHits(what string, corpus *evidence.Corpus, ok bool, hits []evidence.Hit, clean string) {
	if corpus == nil {
		return
	}
	if len(hits) > 0 || ok {
		e.ObserveHits(what, hits, clean)
	}
}

// checkNoClientIP: after successful sessions from a distinctive address,
// that address — in every form, and as the server saw it — is in no log
// line and in no stored file. Lines about failed logins may carry the
// address of a failed login only when the policy allows failed-login
// (allow: [failed-login]); with allow: [] every address's lines are
// judged, the failed login's included.
func checkNoClientIP(ctx context.Context, e *Env) error {
	if e.noChannel(map[spec.Capability]string{spec.CapLogs: "logs", spec.CapData: "stored data"}) {
		return nil
	}
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
	// its source, else from the same one: the log control (logMarks).
	failed, marks, err := e.logMarks(ctx, a)
	if err != nil {
		return err
	}
	failedSeen := e.Target.SeenAddrs(ctx, failed)
	logs, ok, err := e.logsWith(ctx, "logs", marks)
	if err != nil {
		return err
	}
	if logs != nil {
		addrs := e.Target.SeenAddrs(ctx, local)
		for _, f := range failedSeen {
			if !slices.Contains(addrs, f) {
				addrs = append(addrs, f)
			}
		}
		var kept, allowed []evidence.Hit
		for _, addr := range addrs {
			hits := logs.Find(evidence.AddressNeedle(addr))
			mayFail := allowFailed && slices.Contains(failedSeen, addr)
			k, al := filterHits(hits, func(h evidence.Hit) bool { return mayFail && failedLoginLine.MatchString(h.LineText) })
			kept, allowed = append(kept, k...), append(allowed, al...)
		}
		clean := "not found"
		if !allowFailed {
			clean = "not found (the policy allows no address, failed logins' included)"
		}
		e.judgeHits("client address in the logs", logs, ok, kept, clean)
		if len(allowed) > 0 {
			e.Observe("client address in failed-login lines", true, "%d line(s), allowed by the policy (allow: [failed-login]; e.g. %s)", len(allowed), allowed[0].Context)
		}
	}

	// Control: b's account name is certainly stored, in a's roster.
	data, ok, err := e.dataWith(ctx, "stored data", e.accountNeedle(b.User))
	if err != nil {
		return err
	}
	var dataHits []evidence.Hit
	if data != nil {
		for _, n := range append(seen, e.addressNeedles(ctx, failed)...) {
			dataHits = append(dataHits, data.Find(n)...)
		}
	}
	e.judgeHits("client address in the stored data", data, ok, dataHits, "not found")
	return nil
}

// checkNoMessageHistory: a message delivered online leaves no trace at
// rest (RFC 6121 §8; no archive, no history), and neither does a group
// chat message where the server has a MUC service (XEP-0045, often with
// XEP-0313 on the rooms). The data control is a message to an offline
// account, which the server certainly stores; the log control is the
// spec's account name in the logs, else its failed login (liveLogMarks).
func checkNoMessageHistory(ctx context.Context, e *Env) error {
	if e.noChannel(map[spec.Capability]string{spec.CapLogs: "logs", spec.CapData: "stored data"}) {
		return nil
	}
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
	needles := []evidence.Needle{evidence.TextNeedle("the delivered message", delivered)}
	room, err := e.groupChat(ctx, a)
	if err != nil {
		return err
	}
	if room != "" {
		needles = append(needles, evidence.TextNeedle("the group chat message", room))
	}
	marks, err := e.liveLogMarks(ctx, a)
	if err != nil {
		return err
	}
	data, ok, err := e.dataWith(ctx, "stored data", evidence.TextNeedle("the pending offline message", pending))
	if err != nil {
		return err
	}
	logs, lok, err := e.logsWith(ctx, "logs", marks)
	if err != nil {
		return err
	}
	for _, n := range needles {
		e.judge(n.What+" in the stored data", data, ok, n, "not found")
		if logs != nil {
			e.judge(n.What+" in the logs", logs, lok, n, fmt.Sprintf("not found in %s of logs", size(logs.Size())))
		}
	}
	return nil
}

// groupChat looks for a MUC service among the server's disco items
// (XEP-0030 §4; identity conference/text, XEP-0045 §6.1) and, where there
// is one, joins a fresh room as a, sends a groupchat message, leaves, and
// returns the message body for the scans. It returns "" when no MUC
// service is advertised (recorded: no group chat history to keep) or when
// the service cannot be examined (recorded as not examined).
func (e *Env) groupChat(ctx context.Context, a target.Account) (string, error) {
	c, err := e.Session(ctx, a)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	items, err := c.DiscoItems(ctx, "", "")
	var se *xmppclient.StanzaError
	switch {
	case errors.As(err, &se):
		e.Blind("group chat", "the server refused disco#items (%s/%s), so whether it has a MUC service is unknown", se.Type, se.Condition)
		return "", nil
	case err != nil:
		return "", err
	}
	var svc string
	var looked []string
	for _, it := range items {
		info, err := c.DiscoInfo(ctx, it.JID, "")
		if err != nil {
			looked = append(looked, it.JID+" (no disco#info)")
			continue
		}
		looked = append(looked, it.JID)
		for _, id := range info.Identities {
			if id.Category == "conference" && id.Type == "text" {
				svc = it.JID
			}
		}
		if svc != "" {
			break
		}
	}
	if svc == "" {
		e.Observe("group chat", true, "no MUC service: group chat not examined (no disco item of %s has the identity conference/text: %s), so there is no group chat history to keep",
			e.Target.Domain(), listOr(looked, "no items"))
		return "", nil
	}
	room := UniqueName("xmppcheck-room") + "@" + svc
	occupant := room + "/" + UniqueName("nick")
	if err := c.Send(ctx, "<presence to='"+xmppclient.Escape(occupant)+"'><x xmlns='"+ns.MUC+"'/></presence>"); err != nil {
		return "", err
	}
	self, err := c.RecvMatch(ctx, func(s xmppclient.Stanza) bool {
		return s.Kind() == "presence" && strings.EqualFold(s.From, occupant)
	})
	if err != nil {
		e.Blind("group chat", "MUC service %s: no presence back from room %s (%v)", svc, room, err)
		return "", nil
	}
	if self.Type == "error" {
		e.Blind("group chat", "MUC service %s refused to create room %s: %v", svc, room, self.Err())
		return "", nil
	}
	if strings.Contains(self.Raw, "code='201'") || strings.Contains(self.Raw, `code="201"`) {
		// A new room is locked until configured: accept the defaults, as
		// an ordinary client does (XEP-0045 §10.1.2, instant room) — the
		// server's default is what is under test.
		if _, err := c.IQ(ctx, "set", room, "<query xmlns='"+ns.MUCOwner+"'><x xmlns='jabber:x:data' type='submit'/></query>"); err != nil {
			e.Blind("group chat", "MUC service %s: the new room %s could not be unlocked with its defaults (%v)", svc, room, err)
			return "", nil
		}
	}
	body := UniqueName("groupchat-body")
	if err := c.Send(ctx, "<message to='"+xmppclient.Escape(room)+"' type='groupchat'><body>"+body+"</body></message>"); err != nil {
		return "", err
	}
	if _, err := c.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return s.Kind() == "message" && s.Body() == body }); err != nil {
		e.Blind("group chat", "MUC service %s: the room %s did not reflect the message (%v)", svc, room, err)
		return "", nil
	}
	if err := c.Send(ctx, "<presence to='"+xmppclient.Escape(occupant)+"' type='unavailable'/>"); err != nil {
		return "", err
	}
	if _, err := c.Ping(ctx, ""); err != nil {
		return "", err
	}
	e.Observe("group chat (test)", true, "a message sent to room %s of the MUC service %s, then left", room, svc)
	return body, nil
}

// checkEncryptedAtRest: what users store — a message body (offline), a
// vCard, roster names — appears in plaintext nowhere in the raw data
// directory. Controls: the server demonstrably keeps the data (it serves
// the vCard back, the data directory changed) and, where the target offers
// a decrypted view, the markers are found there.
func checkEncryptedAtRest(ctx context.Context, e *Env) error {
	if !e.channel(spec.CapData, "raw data directory") {
		return nil
	}
	acc, err := e.DisposableAccounts(ctx, "enc-a", "enc-b") // a vCard and roster names are set
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
	markers := []evidence.Needle{
		evidence.TextNeedle("the offline message body", body), evidence.TextNeedle("the vCard full name", fn),
		evidence.TextNeedle("the vCard note", note), evidence.TextNeedle("the roster name", rname),
	}
	// Plaintext found is a violation whatever the controls say.
	ok := true
	switch {
	case raw.Size() == 0:
		e.Blind("raw data directory", "it is empty (%s): evidence.data may name the wrong directory; fix the target file", strings.Join(raw.Names(), ", "))
		ok = false
	case fingerprint(before) == fingerprint(raw):
		e.Blind("raw data directory", "it did not change while the server stored a vCard, a roster item and a message (%d files, %s): it is not where the server writes; fix evidence.data in the target file", len(raw.Files), size(raw.Size()))
		ok = false
	default:
		e.Observe("data directory changed while storing (control)", true, "%d files, %s", len(raw.Files), size(raw.Size()))
	}
	if pd, isPD := e.Target.(target.PlainDataer); isPD && ok {
		plain, err := pd.PlainData(ctx)
		if err != nil {
			return fmt.Errorf("decrypted view: %w", err)
		}
		for _, m := range markers {
			if len(plain.Find(m)) == 0 {
				e.Blind("raw data directory", "positive control: %s is not in the decrypted store (%d files, %s): evidence.decrypted may read another store; fix the target file", m.What, len(plain.Files), size(plain.Size()))
				ok = false
				break
			}
		}
		if ok {
			e.Observe("markers in the decrypted store (control)", true, "all %d found", len(markers))
		}
	}
	for _, m := range markers {
		e.judge(m.What+" in the raw data directory", raw, ok, m, "not found in plaintext")
	}
	return nil
}

// checkOfflineDeleteOnDelivery: an offline message is stored until its
// recipient comes online, is delivered once, and is then gone from storage
// (XEP-0160). Each scan has its own control from its own corpus: before
// delivery the message itself, after it a second message, to an account
// that never logs in, which stays.
func checkOfflineDeleteOnDelivery(ctx context.Context, e *Env) error {
	acc, err := e.Accounts(ctx, "off-a", "off-b", "off-c")
	if err != nil {
		return err
	}
	a, b, stay := acc[0], acc[1], acc[2]
	body, kept := UniqueName("offline-body"), UniqueName("offline-kept")
	ca, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	if _, err := ca.SendMessage(ctx, e.Bare(b), body); err != nil {
		return err
	}
	if _, err := ca.SendMessage(ctx, e.Bare(stay), kept); err != nil {
		return err
	}
	if _, err := ca.Ping(ctx, ""); err != nil {
		return err
	}
	ca.Close(ctx)
	needle := evidence.TextNeedle("the offline message", body)
	if _, _, err := e.dataWith(ctx, "stored data before delivery", needle); err != nil {
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
	c, ok, err := e.dataWith(ctx, "stored data after delivery", evidence.TextNeedle("the offline message still pending for "+e.Bare(stay), kept))
	if err != nil {
		return err
	}
	e.judge("the delivered message in storage", c, ok, needle, "gone")
	return nil
}

// checkSCRAMStorage: SCRAM-<hash> (the policy's hash) is offered; the
// account's record at rest holds salt, iteration count (at least the
// policy's), StoredKey and ServerKey that recomputing from the password
// reproduces (RFC 5802 §3); and the password is in no file and no log in
// any encoding. The password searches need no parser and always run.
func checkSCRAMStorage(ctx context.Context, e *Env) error {
	h := e.Claim.Params.Hash("hash")
	minIter := e.Claim.Params.Count("min_iterations")
	mech := "SCRAM-" + h
	a, err := e.Account(ctx, "scram")
	if err != nil {
		return err
	}
	c, err := e.Client(ctx, xmppclient.WithMechanisms(mech))
	if err != nil {
		return err
	}
	mechs := c.Features().Mechanisms
	offered := slices.Contains(mechs, mech)
	e.Observe(mech+" offered", offered, "mechanisms: %s", listOr(mechs, "none"))
	if offered {
		if err := c.Login(ctx, a.User, a.Password); err != nil {
			return fmt.Errorf("%s login: %w", mech, err)
		}
	}
	c.Close(ctx)
	marks, err := e.liveLogMarks(ctx, a)
	if err != nil {
		return err
	}
	pw := evidence.PasswordNeedle(a.Password)
	data, dok, err := e.dataWith(ctx, "stored data", e.accountNeedle(a.User))
	if err != nil {
		return err
	}
	e.judge("the password in the stored data", data, dok, pw, fmt.Sprintf("in none of %d forms", len(pw.Forms)))
	logs, lok, err := e.logsWith(ctx, "logs", marks)
	if err != nil {
		return err
	}
	if logs != nil {
		e.judge("the password in the logs", logs, lok, pw, fmt.Sprintf("in none of %d forms (%s of logs)", len(pw.Forms), size(logs.Size())))
	}
	creds, from, err := e.credentialRecords(ctx, data)
	if err != nil || from == "" {
		return err
	}
	var mine []evidence.Credential
	for _, c := range creds {
		if c.User == a.User {
			mine = append(mine, c)
		}
	}
	if len(mine) == 0 {
		e.Blind("credential records", "positive control: no record of %s among %d %s record(s): the format or the command may not match this server's store; fix the target file", a.User, len(creds), from)
		return nil
	}
	e.Observe("credential records found (control)", true, "%d %s record(s) of %s in %s", len(mine), from, a.User, mine[0].File)
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
	e.Observe("a "+mech+" record at rest", hasPolicyHash, "%s", map[bool]string{true: "present", false: "absent: the keys are not stored for the policy's hash"}[hasPolicyHash])
	return nil
}

// credentialRecords returns the credential records the target exposes:
// the output of the target file's evidence.credentials command (the
// neutral line format) when it names one, else the stored data parsed in
// evidence.store_format. from names the source; "" means none could be
// read (recorded as not examined).
func (e *Env) credentialRecords(ctx context.Context, data *evidence.Corpus) (creds []evidence.Credential, from string, err error) {
	if cr, ok := e.Target.(target.Credentialer); ok {
		out, err := cr.Credentials(ctx)
		switch {
		case errors.Is(err, target.ErrUnsupported):
		case err != nil:
			if ctx.Err() != nil {
				return nil, "", err
			}
			e.Blind("credential records", "the evidence.credentials command failed (%v); fix it in the target file", err)
			return nil, "", nil
		default:
			creds, err := evidence.ParseRecords(out)
			if err != nil {
				e.Blind("credential records", "the evidence.credentials output does not parse: %v; fix the command in the target file", err)
				return nil, "", nil
			}
			return creds, "evidence.credentials", nil
		}
	}
	format := e.Target.StoreFormat()
	switch {
	case format == "":
		e.Blind("credential records", "the target names no store format (evidence.store_format) and no evidence.credentials command, so the stored keys cannot be checked (the password itself was searched for)")
		return nil, "", nil
	case data == nil:
		e.Blind("credential records", "no stored data to parse")
		return nil, "", nil
	}
	creds, err = evidence.ParseSCRAM(format, data)
	if err != nil {
		return nil, "", err
	}
	return creds, string(format), nil
}

// timeInLine recognises a time of day, a date or a Unix time in a log line.
var timeInLine = regexp.MustCompile(`\b\d{1,2}:\d{2}:\d{2}\b|\b\d{4}-\d{2}-\d{2}\b|\b1[0-9]{9}\b|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2}\b`)

// connectionWords mark log lines about sessions starting or ending.
var connectionWords = []string{"auth", "login", "logout", "log in", "log out", "connect", "session", "online", "offline", "bound", "resource", "closed"}

// lastActivityPause separates the session's logout from the XEP-0012
// queries, so that an answer counting from a stored logout time differs
// from the answer for an account that never connected.
const lastActivityPause = 2 * time.Second

// checkNoConnectionTimes: neither XEP-0012 nor storage reveals when an
// account was connected. A subscribed contact asks for the account's last
// activity after it logs out; an answer counts as a stored connection
// time only if it could reflect the session (seconds since the logout)
// and differs from what a fresh account that never connected gets. The
// stored data is searched for the times of the session; log lines naming
// the account and a session event are the server storing a connection
// time.
func checkNoConnectionTimes(ctx context.Context, e *Env) error {
	// Accounts it may change: a and b are subscribed to each other, and
	// the fresh one must never have connected, so a supplied account
	// (remote targets) is never one of them.
	acc, err := e.DisposableAccounts(ctx, "times-a", "times-b", "times-fresh")
	if err != nil {
		return err
	}
	a, b, fresh := acc[0], acc[1], acc[2]
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
	if err := pause(ctx, 3*time.Second); err != nil {
		return err
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
	data, ok, err := e.dataWith(ctx, "stored data", e.accountNeedle(a.User))
	if err != nil {
		return err
	}
	e.judge("session times in the stored data", data, ok, timestampNeedle(start.Add(-time.Second), end.Add(time.Second)), "not found")
	if err := pause(ctx, lastActivityPause-time.Since(end)); err != nil {
		return err
	}
	if err := e.lastActivity(ctx, cb, a, fresh, end); err != nil {
		return err
	}
	cb.Close(ctx)
	marks, err := e.liveLogMarks(ctx, b)
	if err != nil {
		return err
	}
	logs, lok, err := e.logsWith(ctx, "logs", marks)
	if err != nil || logs == nil {
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
	e.judgeHits("timed log lines recording the account's sessions", logs, lok, lines, fmt.Sprintf("none in %s of logs", size(logs.Size())))
	return nil
}

// lastActivity asks, as cb, for the XEP-0012 last activity of a (logged
// out at end) and of fresh (never connected). A refusal is compliant; an
// answer is a stored connection time only if it could reflect a's session
// (at least the pause since the logout, at most the time since it) and is
// not what the never-connected account gets too ("0 seconds" for every
// account is a server keeping nothing).
func (e *Env) lastActivity(ctx context.Context, cb *xmppclient.Client, a, fresh target.Account, end time.Time) error {
	const what = "XEP-0012 last activity of the account"
	la, err := cb.LastActivity(ctx, e.Bare(a))
	since := int64(time.Since(end)/time.Second) + 1
	var se *xmppclient.StanzaError
	switch {
	case errors.As(err, &se):
		e.Observe(what, true, "refused: %s/%s", se.Type, se.Condition)
		return nil
	case err != nil:
		return fmt.Errorf("last activity query: %w", err)
	}
	ref, rerr := cb.LastActivity(ctx, e.Bare(fresh))
	refText := ""
	switch {
	case errors.As(rerr, &se):
		refText = fmt.Sprintf("refused (%s/%s)", se.Type, se.Condition)
	case rerr != nil:
		return fmt.Errorf("last activity query (never-connected account): %w", rerr)
	default:
		refText = fmt.Sprintf("%d seconds", ref.Seconds)
	}
	if !reflectsSession(la.Seconds, since, ref.Seconds, rerr == nil) {
		e.Observe(what, true, "answered %d seconds, which does not reflect the session (logged out %d s before; a never-connected account gets %s)", la.Seconds, since, refText)
		return nil
	}
	e.Observe(what, false, "answered: %d seconds since logout (logged out %d s before), while a never-connected account gets %s: the server keeps the time of the session", la.Seconds, since, refText)
	return nil
}

// reflectsSession says whether an XEP-0012 answer of secs seconds could
// count from a logout since seconds ago, at least lastActivityPause
// before the query, and differs from the answer for a never-connected
// account (ref, when answered): only such an answer proves a stored
// connection time.
func reflectsSession(secs, since, ref int64, refAnswered bool) bool {
	if refAnswered && abs(secs-ref) <= 1 {
		return false
	}
	return secs >= int64(lastActivityPause/time.Second)-1 && secs <= since
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
