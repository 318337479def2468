package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

func init() {
	checks[spec.OfflineRetention] = checkOfflineRetention
	checks[spec.UploadRetention] = checkUploadRetention
	checks[spec.AccountSelfDeletion] = checkSelfDeletion
	checks[spec.AccountAddressReuse] = checkAddressReuse
}

// margin is how far before and after max_age the retention checks look.
func margin(maxAge time.Duration) time.Duration { return min(time.Hour, maxAge/10) }

// advance moves the target's clock and records it.
func (e *Env) advance(ctx context.Context, d time.Duration, why string) error {
	if err := e.Target.Advance(ctx, d); err != nil {
		return fmt.Errorf("advance the server's clock by %s: %w", spec.FormatDuration(d), err)
	}
	e.Observe("server clock", true, "advanced by %s (%s); now %s", spec.FormatDuration(d), why, e.Target.Now().UTC().Format(time.RFC3339))
	return nil
}

// sendOffline sends body from a session of from to the offline account to.
func (e *Env) sendOffline(ctx context.Context, from target.Account, to target.Account, body string) error {
	c, err := e.Session(ctx, from)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.SendMessage(ctx, e.Bare(to), body); err != nil {
		return err
	}
	_, err = c.Ping(ctx, "")
	return err
}

// receive logs to in with initial presence and returns the bodies delivered.
func (e *Env) receive(ctx context.Context, to target.Account) ([]string, error) {
	c, err := e.Session(ctx, to)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	if err := c.SendPresence(ctx, "", "", ""); err != nil {
		return nil, err
	}
	got, err := drain(ctx, c)
	return bodies(got), err
}

// checkOfflineRetention: two offline messages wait; just before max_age
// the first recipient still gets its message (kept), just after it the
// second gets nothing (gone), and with evidence the body is gone at rest.
func checkOfflineRetention(ctx context.Context, e *Env) error {
	maxAge := e.Claim.Params.Duration("max_age")
	m := margin(maxAge)
	acc, err := e.Accounts(ctx, "ret-sender", "ret-early", "ret-late")
	if err != nil {
		return err
	}
	s, r1, r2 := acc[0], acc[1], acc[2]
	b1, b2 := UniqueName("offline-early"), UniqueName("offline-late")
	if err := e.sendOffline(ctx, s, r1, b1); err != nil {
		return err
	}
	if err := e.sendOffline(ctx, s, r2, b2); err != nil {
		return err
	}
	if err := e.advance(ctx, maxAge-m, "just before max_age"); err != nil {
		return err
	}
	got, err := e.receive(ctx, r1)
	if err != nil {
		return err
	}
	e.Observe("offline message "+spec.FormatDuration(maxAge-m)+" old", containsAny(got, b1), "%s", map[bool]string{true: "still delivered (kept before max_age)", false: "NOT delivered: purged before max_age"}[containsAny(got, b1)])
	if err := e.advance(ctx, 2*m, "just after max_age"); err != nil {
		return err
	}
	// At rest first: delivery would delete the message anyway.
	if ok, _ := e.Target.Has(spec.CapEvidence); ok {
		c, _, err := e.data(ctx)
		if err != nil {
			return err
		}
		e.ObserveHits("the expired message at rest", c.Find(evidence.TextNeedle("the expired offline message", b2)), "gone")
	}
	got, err = e.receive(ctx, r2)
	if err != nil {
		return err
	}
	e.Observe("offline message "+spec.FormatDuration(maxAge+m)+" old", !containsAny(got, b2), "%s", map[bool]string{true: "gone", false: "STILL delivered after max_age"}[!containsAny(got, b2)])
	return nil
}

// uploadFile uploads body for a and returns the GET URL.
func (e *Env) uploadFile(ctx context.Context, a target.Account, body string) (string, error) {
	c, err := e.Session(ctx, a)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	svc, err := uploadService(ctx, c, e.Target.Domain())
	if err != nil {
		return "", err
	}
	slot, err := c.RequestUploadSlot(ctx, svc, "note.txt", int64(len(body)), "text/plain")
	if err != nil {
		return "", err
	}
	hc, err := e.HTTPClient()
	if err != nil {
		return "", err
	}
	if err := put(ctx, hc, slot, "text/plain", body); err != nil {
		return "", err
	}
	return slot.GetURL, nil
}

// served reports whether url serves body.
func (e *Env) served(ctx context.Context, url, body string) (bool, string, error) {
	hc, err := e.HTTPClient()
	if err != nil {
		return false, "", err
	}
	got, code, err := get(ctx, hc, url)
	if err != nil {
		return false, "", err
	}
	return code == http.StatusOK && got == body, fmt.Sprintf("HTTP %d", code), nil
}

// checkUploadRetention: an uploaded file is served just before max_age
// and gone just after it (XEP-0363; the deployment's purge job runs after
// each clock move).
func checkUploadRetention(ctx context.Context, e *Env) error {
	maxAge := e.Claim.Params.Duration("max_age")
	m := margin(maxAge)
	a, err := e.Account(ctx, "upret")
	if err != nil {
		return err
	}
	body := "xmppcheck retention " + UniqueName("file")
	url, err := e.uploadFile(ctx, a, body)
	if err != nil {
		return err
	}
	ok, st, err := e.served(ctx, url, body)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the uploaded file is not served right after upload (%s)", st)
	}
	e.Observe("the uploaded file, new (control)", true, "served: %s", st)
	if err := e.advance(ctx, maxAge-m, "just before max_age"); err != nil {
		return err
	}
	ok, st, err = e.served(ctx, url, body)
	if err != nil {
		return err
	}
	e.Observe("the file "+spec.FormatDuration(maxAge-m)+" old", ok, "%s", map[bool]string{true: "served (" + st + ")", false: "NOT served before max_age (" + st + ")"}[ok])
	if err := e.advance(ctx, 2*m, "just after max_age"); err != nil {
		return err
	}
	ok, st, err = e.served(ctx, url, body)
	if err != nil {
		return err
	}
	e.Observe("the file "+spec.FormatDuration(maxAge+m)+" old", !ok, "%s", map[bool]string{true: "gone (" + st + ")", false: "STILL served after max_age (" + st + ")"}[!ok])
	if has, _ := e.Target.Has(spec.CapEvidence); has {
		c, _, err := e.data(ctx)
		if err != nil {
			return err
		}
		e.ObserveHits("the expired file at rest", c.Find(evidence.TextNeedle("the expired file", body)), "gone")
	}
	return nil
}

// footprint is what an account leaves on a server for the account tests.
type footprint struct {
	vcardFN, vcardNote, rosterName, offline, file string
	url                                           string // upload GET URL ("" without upload)
}

// makeFootprint gives a a vCard, a roster entry for b with a name, a
// mutual subscription with b, an offline message from b and (where the
// server has one) an upload.
func (e *Env) makeFootprint(ctx context.Context, a, b target.Account) (footprint, error) {
	fp := footprint{vcardFN: UniqueName("fn"), vcardNote: UniqueName("note"), rosterName: UniqueName("rname"),
		offline: UniqueName("offline"), file: "xmppcheck file " + UniqueName("f")}
	ca, err := e.Session(ctx, a)
	if err != nil {
		return fp, err
	}
	cb, err := e.Session(ctx, b)
	if err != nil {
		return fp, err
	}
	defer cb.Close(ctx)
	if err := ca.SetVCard(ctx, xmppclient.VCard{FN: fp.vcardFN, Extra: "<NOTE>" + fp.vcardNote + "</NOTE>"}); err != nil {
		return fp, fmt.Errorf("set vCard: %w", err)
	}
	if err := ca.SetRosterItem(ctx, xmppclient.RosterItem{JID: e.Bare(b), Name: fp.rosterName}); err != nil {
		return fp, fmt.Errorf("roster: %w", err)
	}
	ca.SendPresence(ctx, "", "", "")
	cb.SendPresence(ctx, "", "", "")
	// Mutual subscription (RFC 6121 §3.1).
	for _, p := range []struct {
		from, to *xmppclient.Client
		toBare   string
		fromBare string
	}{{ca, cb, e.Bare(b), e.Bare(a)}, {cb, ca, e.Bare(a), e.Bare(b)}} {
		if err := p.from.Subscribe(ctx, p.toBare); err != nil {
			return fp, err
		}
		if _, err := p.to.RecvMatch(ctx, func(s xmppclient.Stanza) bool {
			return s.Kind() == "presence" && strings.Contains(s.Raw, "'subscribe'") || strings.Contains(s.Raw, `"subscribe"`)
		}); err != nil {
			return fp, fmt.Errorf("subscription request not delivered: %w", err)
		}
		if err := p.to.ApproveSubscription(ctx, p.fromBare); err != nil {
			return fp, err
		}
	}
	if _, err := ca.Ping(ctx, ""); err != nil {
		return fp, err
	}
	ca.Close(ctx)
	if _, err := cb.SendMessage(ctx, e.Bare(a), fp.offline); err != nil {
		return fp, err
	}
	if _, err := cb.Ping(ctx, ""); err != nil {
		return fp, err
	}
	url, err := e.uploadFile(ctx, a, fp.file)
	var ve *verdictError
	switch {
	case errors.As(err, &ve):
		e.Observe("upload", true, "no upload on this target (%s)", ve.reason)
	case err != nil:
		return fp, err
	default:
		fp.url = url
	}
	e.Observe("footprint of "+e.Bare(a), true, "vCard, roster entry with a name, mutual subscription with %s, a pending offline message%s", e.Bare(b), map[bool]string{true: ", an uploaded file", false: ""}[fp.url != ""])
	return fp, nil
}

// errRemoveRefused: the server refused XEP-0077 remove (recorded as a
// failing observation; the check ends there).
var errRemoveRefused = errors.New("remove refused")

// remove deletes a by XEP-0077 §3.2 from its own session.
func (e *Env) remove(ctx context.Context, a target.Account) error {
	if !a.Created { // issue 12: never remove a supplied account
		return fmt.Errorf("%w: %s", errSuppliedAccount, e.Bare(a))
	}
	c, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if err := c.Unregister(ctx); err != nil {
		var se *xmppclient.StanzaError
		if errors.As(err, &se) {
			e.Observe("XEP-0077 <remove/>", false, "refused: %s/%s %s", se.Type, se.Condition, se.Text)
			return errRemoveRefused
		}
		return fmt.Errorf("XEP-0077 remove: %w", err)
	}
	e.forget(a)
	e.Observe("XEP-0077 <remove/>", true, "accepted for %s", e.Bare(a))
	return nil
}

func (fp footprint) needles() []evidence.Needle {
	return []evidence.Needle{
		evidence.TextNeedle("the vCard full name", fp.vcardFN), evidence.TextNeedle("the vCard note", fp.vcardNote),
		evidence.TextNeedle("the roster name", fp.rosterName), evidence.TextNeedle("the offline message", fp.offline),
	}
}

// checkSelfDeletion: after XEP-0077 remove the account cannot log in, its
// vCard and upload are no longer served, and (with evidence) its roster
// names, vCard and offline messages are gone from storage.
func checkSelfDeletion(ctx context.Context, e *Env) error {
	acc, err := e.DisposableAccounts(ctx, "del-a", "del-b")
	if err != nil {
		return err
	}
	a, b := acc[0], acc[1]
	fp, err := e.makeFootprint(ctx, a, b)
	if err != nil {
		return err
	}
	// Control for the storage scan: b's own vCard, which stays.
	keep := UniqueName("kept-fn")
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	if err := cb.SetVCard(ctx, xmppclient.VCard{FN: keep}); err != nil {
		return err
	}
	cb.Close(ctx)
	if err := e.remove(ctx, a); errors.Is(err, errRemoveRefused) {
		return nil
	} else if err != nil {
		return err
	}
	c, err := e.Client(ctx)
	if err != nil {
		return err
	}
	err = c.Login(ctx, a.User, a.Password)
	c.Close(ctx)
	e.Observe("login as the removed account", err != nil, "%s", okOrErr(err, "SUCCEEDED: the account still exists"))
	cb, err = e.Session(ctx, b)
	if err != nil {
		return err
	}
	v, err := cb.GetVCard(ctx, e.Bare(a))
	cb.Close(ctx)
	leak := err == nil && (v.FN == fp.vcardFN || strings.Contains(v.Extra, fp.vcardNote))
	e.Observe("the removed account's vCard, asked by a contact", !leak, "%s", map[bool]string{true: "still served", false: "not served"}[leak])
	if fp.url != "" {
		ok, st, err := e.served(ctx, fp.url, fp.file)
		if err != nil {
			return err
		}
		e.Observe("the removed account's upload", !ok, "%s", map[bool]string{true: "STILL served (" + st + ")", false: "gone (" + st + ")"}[ok])
	}
	if has, _ := e.Target.Has(spec.CapEvidence); has {
		hits, err := e.scanData(ctx, "stored data", evidence.TextNeedle("the remaining contact's vCard", keep), fp.needles()...)
		if err != nil {
			return err
		}
		e.ObserveHits("the removed account's roster, vCard and offline message at rest", hits, "gone")
	}
	return nil
}

// checkAddressReuse: the removed address can be registered again at once,
// and its next owner inherits nothing: no roster, vCard, offline message,
// or subscription (RFC 6121 §3) of the old owner.
func checkAddressReuse(ctx context.Context, e *Env) error {
	if !e.canCreateAccounts() {
		return notTestablef("the spec may not create accounts on this target (remote without --ibr)")
	}
	acc, err := e.DisposableAccounts(ctx, "reuse-a", "reuse-b")
	if err != nil {
		return err
	}
	a, b := acc[0], acc[1]
	fp, err := e.makeFootprint(ctx, a, b)
	if err != nil {
		return err
	}
	if err := e.remove(ctx, a); errors.Is(err, errRemoveRefused) {
		return nil
	} else if err != nil {
		return err
	}
	next := target.Account{User: a.User, Password: UniqueName("new-owner-pw"), Created: true}
	e.Transcript.AddSecret(next.Password)
	if e.Target.IBR() {
		err = e.RegisterFilling(ctx, next.User, next.Password)
	} else {
		err = e.Target.CreateAccount(ctx, next)
	}
	var se *xmppclient.StanzaError
	switch {
	case errors.As(err, &se):
		e.Observe("registering the address again at once", false, "refused: %s/%s %s", se.Type, se.Condition, se.Text)
		return nil
	case err != nil:
		e.Observe("registering the address again at once", false, "failed: %v", err)
		return nil
	}
	e.accounts = append(e.accounts, next)
	e.Observe("registering the address again at once", true, "%s created for a new owner", e.Bare(next))
	cn, err := e.Session(ctx, next)
	if err != nil {
		return err
	}
	roster, err := cn.Roster(ctx)
	if err != nil {
		return err
	}
	var inherited []string
	for _, it := range roster {
		inherited = append(inherited, it.JID+" ("+it.Subscription+")")
	}
	e.Observe("the new owner's roster", len(roster) == 0, "%s", listOr(inherited, "empty"))
	v, err := cn.GetVCard(ctx, "")
	vleak := err == nil && (v.FN == fp.vcardFN || strings.Contains(v.Extra, fp.vcardNote))
	e.Observe("the new owner's vCard", !vleak, "%s", map[bool]string{true: "the OLD owner's vCard", false: "not the old owner's"}[vleak])
	if err := cn.SendPresence(ctx, "", "", ""); err != nil {
		return err
	}
	got, err := drain(ctx, cn)
	if err != nil {
		return err
	}
	e.Observe("offline messages to the new owner", !containsAny(bodies(got), fp.offline), "%s", map[bool]string{true: "the OLD owner's offline message was delivered", false: "none of the old owner's"}[containsAny(bodies(got), fp.offline)])
	var presences []string
	for _, s := range got {
		if s.Kind() == "presence" && strings.Contains(s.Raw, e.Bare(b)) {
			presences = append(presences, "presence from "+e.Bare(b))
		}
	}
	e.Observe("presence of the old owner's contacts", len(presences) == 0, "%s", listOr(presences, "none received"))
	cn.Close(ctx)
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	rb, err := cb.Roster(ctx)
	cb.Close(ctx)
	if err != nil {
		return err
	}
	for _, it := range rb {
		if strings.EqualFold(it.JID, e.Bare(a)) {
			ok := it.Subscription == "" || it.Subscription == "none" || it.Subscription == "remove"
			e.Observe("the contact's subscription with the address", ok, "%s", map[bool]string{true: "none", false: "still " + it.Subscription + ": the new owner would exchange presence with the old owner's contact"}[ok])
		}
	}
	return nil
}
