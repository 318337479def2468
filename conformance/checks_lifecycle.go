package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
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

// margin is how far before and after an age the retention checks look.
func margin(age time.Duration) time.Duration { return min(time.Hour, age/10) }

// minAgeStep is the availability reading of a retention claim: where the
// policy promises min_age, it moves the clock to just before it, proves the
// server's clock moved (clockMoved) and, if it did, observes whether the
// item (what) is still there, as kept says. It returns how far the clock
// was moved (0 without min_age).
func (e *Env) minAgeStep(ctx context.Context, minAge time.Duration, sender, probe target.Account, base time.Time, what string, kept func() (bool, string, error)) (time.Duration, error) {
	if minAge <= 0 {
		return 0, nil
	}
	moved := minAge - margin(minAge)
	if err := e.advance(ctx, moved, "just before min_age"); err != nil {
		return 0, err
	}
	proved, err := e.clockMoved(ctx, sender, probe, "", base, moved)
	if err != nil {
		return 0, err
	}
	ok, observed, err := kept()
	if err != nil {
		return 0, err
	}
	if proved {
		e.Observe(what+" "+spec.FormatDuration(moved)+" old (min_age "+spec.FormatDuration(minAge)+")", ok, "%s", observed)
	}
	return moved, nil
}

// advance moves the target's clock and records it.
func (e *Env) advance(ctx context.Context, d time.Duration, why string) error {
	if err := e.Target.Advance(ctx, d); err != nil {
		return fmt.Errorf("advance the server's clock by %s: %w", spec.FormatDuration(d), err)
	}
	e.Observe("server clock", true, "advanced by %s (%s)", spec.FormatDuration(d), why)
	return nil
}

// clockSlack absorbs the second granularity of time stamps.
const clockSlack = 2 * time.Second

// serverTime reads the server's own clock: a message from sender stored
// offline for probe is stamped with the server's time (XEP-0203 delay,
// XEP-0160 §4); where the server stamps nothing, its XEP-0202 entity time
// is asked. body, when not empty, is an offline message already waiting
// for probe (used instead of a new one). Zero time: not observable.
func (e *Env) serverTime(ctx context.Context, sender, probe target.Account, body string) (time.Time, string, error) {
	if body == "" {
		body = UniqueName("clock-probe")
		if err := e.sendOffline(ctx, sender, probe, body); err != nil {
			return time.Time{}, "", err
		}
	}
	c, err := e.Session(ctx, probe)
	if err != nil {
		return time.Time{}, "", err
	}
	defer c.Close(ctx)
	if err := c.SendPresence(ctx, "", "", ""); err != nil {
		return time.Time{}, "", err
	}
	got, err := drain(ctx, c)
	if err != nil {
		return time.Time{}, "", err
	}
	for _, st := range got {
		if st.Kind() == "message" && st.Body() == body {
			if at := delayStamp(st); !at.IsZero() {
				return at, "the XEP-0203 delay stamp of an offline message", nil
			}
		}
	}
	if at := entityTime(ctx, c, e.Target.Domain()); !at.IsZero() {
		return at, "the server's XEP-0202 entity time", nil
	}
	return time.Time{}, "", nil
}

// clockMoved proves that the server's own clock moved by at least total
// since base (the server's time read before the first advance; the
// harness calling Advance proves nothing). Not proved → the clock part is
// recorded as not examined ("clock did not move") and it returns false.
func (e *Env) clockMoved(ctx context.Context, sender, probe target.Account, body string, base time.Time, total time.Duration) (bool, error) {
	if base.IsZero() {
		e.Blind("clock", "the server's time could not be observed (no XEP-0203 delay stamp on an offline message, no XEP-0202 entity time), so an advance cannot be proved")
		return false, nil
	}
	at, how, err := e.serverTime(ctx, sender, probe, body)
	if err != nil {
		return false, err
	}
	want := base.Add(total).Add(-clockSlack)
	switch {
	case at.IsZero():
		e.Blind("clock", "the server's time could not be observed after the advance (no XEP-0203 delay stamp, no XEP-0202 entity time)")
		return false, nil
	case at.Before(want):
		e.Blind("clock", "clock did not move: %s reads %s, not at least %s (%s after %s, the server's time before the advance); fix clock.advance in the target file",
			how, at.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339), spec.FormatDuration(total), base.UTC().Format(time.RFC3339))
		return false, nil
	}
	e.Observe("server clock moved (control)", true, "%s reads %s, %s after the server's time before the advance", how, at.UTC().Format(time.RFC3339), spec.FormatDuration(at.Sub(base).Round(time.Second)))
	return true, nil
}

// delayStamp returns the XEP-0203 delay stamp of a stanza (zero without).
func delayStamp(s xmppclient.Stanza) time.Time {
	var v struct {
		Delay []struct {
			Stamp string `xml:"stamp,attr"`
		} `xml:"urn:xmpp:delay delay"`
	}
	if s.Decode(&v) != nil {
		return time.Time{}
	}
	for _, d := range v.Delay {
		if t, err := time.Parse(time.RFC3339Nano, d.Stamp); err == nil {
			return t
		}
	}
	return time.Time{}
}

// entityTime asks the server's time (XEP-0202); zero when not answered.
func entityTime(ctx context.Context, c *xmppclient.Client, domain string) time.Time {
	el, err := c.IQ(ctx, "get", domain, "<time xmlns='urn:xmpp:time'/>")
	if err != nil {
		return time.Time{}
	}
	var v struct {
		Time struct {
			UTC string `xml:"utc"`
		} `xml:"urn:xmpp:time time"`
	}
	if el.Decode(&v) != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v.Time.UTC))
	if err != nil {
		return time.Time{}
	}
	return t
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

// retentionAges reads max_age and the optional min_age (docs/CLAIMS.md,
// "Retention readings"): max_age is the privacy promise (gone after it),
// min_age the availability promise (kept until it).
func (e *Env) retentionAges() (maxAge, minAge time.Duration, err error) {
	maxAge = e.Claim.Params.Duration("max_age")
	if e.Claim.Params.Has("min_age") {
		minAge = e.Claim.Params.Duration("min_age")
		if minAge > maxAge {
			return 0, 0, fmt.Errorf("min_age %s is above max_age %s", spec.FormatDuration(minAge), spec.FormatDuration(maxAge))
		}
	}
	return maxAge, minAge, nil
}

// clockChannels records the clock and purge channels; false when either
// is missing (nothing of a retention claim can be examined then).
func (e *Env) clockChannels() bool {
	return e.channel(spec.CapClock, "clock") && e.channel(spec.CapPurge, "purge")
}

// checkOfflineRetention: an offline message is gone just after max_age —
// not delivered, and (with data) not at rest — and, when the policy gives
// min_age, a second one is still delivered just before min_age. Controls:
// the server's clock is proved to have moved (clockMoved); a message
// stored after the advance is found at rest (data control) and delivered
// (delivery works), and the expired message was at rest before the
// advance.
func checkOfflineRetention(ctx context.Context, e *Env) error {
	maxAge, minAge, err := e.retentionAges()
	if err != nil {
		return err
	}
	m := margin(maxAge)
	if !e.clockChannels() {
		return nil
	}
	acc, err := e.Accounts(ctx, "ret-sender", "ret-early", "ret-late", "ret-probe")
	if err != nil {
		return err
	}
	s, r1, r2, probe := acc[0], acc[1], acc[2], acc[3]
	b1, b2 := UniqueName("offline-early"), UniqueName("offline-late")
	expired := evidence.TextNeedle("the expired offline message", b2)
	base, _, err := e.serverTime(ctx, s, probe, "")
	if err != nil {
		return err
	}
	if minAge > 0 {
		if err := e.sendOffline(ctx, s, r1, b1); err != nil {
			return err
		}
	}
	if err := e.sendOffline(ctx, s, r2, b2); err != nil {
		return err
	}
	if ok, _ := e.Target.Has(spec.CapData); ok {
		if _, _, err := e.dataWith(ctx, "stored data before the advance", expired); err != nil {
			return err
		}
	}
	moved, err := e.minAgeStep(ctx, minAge, s, probe, base, "offline message", func() (bool, string, error) {
		got, err := e.receive(ctx, r1)
		kept := containsAny(got, b1)
		return kept, map[bool]string{true: "still delivered (kept until min_age)", false: "NOT delivered: purged before min_age"}[kept], err
	})
	if err != nil {
		return err
	}
	if err := e.advance(ctx, maxAge+m-moved, "just after max_age"); err != nil {
		return err
	}
	total := maxAge + m
	// A message stored after the advance: the control of the data scan
	// (found at rest) and of delivery, and the clock's proof (its stamp).
	ctl := UniqueName("offline-control")
	if err := e.sendOffline(ctx, s, probe, ctl); err != nil {
		return err
	}
	var data *evidence.Corpus
	dok := false
	if ok, _ := e.Target.Has(spec.CapData); ok { // at rest first: delivery would delete the message anyway
		if data, dok, err = e.dataWith(ctx, "stored data after max_age", evidence.TextNeedle("a message stored after the advance", ctl)); err != nil {
			return err
		}
	} else {
		e.channel(spec.CapData, "stored data after max_age")
	}
	proved, err := e.clockMoved(ctx, s, probe, ctl, base, total)
	if err != nil {
		return err
	}
	got, err := e.receive(ctx, r2)
	if err != nil {
		return err
	}
	if !proved {
		return nil
	}
	e.judge("the expired message at rest", data, dok, expired, "gone")
	gone := !containsAny(got, b2)
	e.Observe("offline message "+spec.FormatDuration(total)+" old (max_age "+spec.FormatDuration(maxAge)+")", gone, "%s", map[bool]string{true: "gone", false: "STILL delivered after max_age"}[gone])
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

// fileGone reports, by the exact outcome, whether url no longer serves
// body: HTTP 404 or 410 is gone, body served is not; anything else is an
// error carrying what was seen.
func (e *Env) fileGone(ctx context.Context, url, body string) (bool, string, error) {
	hc, err := e.HTTPClient()
	if err != nil {
		return false, "", err
	}
	got, code, err := get(ctx, hc, url)
	if err != nil {
		return false, "", err
	}
	st := fmt.Sprintf("HTTP %d", code)
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		return true, st, nil
	case code == http.StatusOK && got == body:
		return false, st, nil
	}
	return false, st, fmt.Errorf("%s: neither the file (HTTP 200) nor gone (HTTP 404 or 410): %s", url, st)
}

// retentionFile is the content of a retention test file: a unique
// marker padded to 16 KiB, so that the file a server stores for it
// (encrypted or not) is told apart from small metadata files.
func retentionFile(marker string) string {
	const n = 16 << 10
	b := strings.Builder{}
	b.WriteString(marker)
	for b.Len() < n {
		b.WriteString(" " + marker)
	}
	return b.String()
}

// uploadTrace says where the data shows an upload of body: files new in
// after (absent from before) at least as large as body — a stored upload,
// even encrypted — and whether body's bytes show anywhere in after.
func uploadTrace(before, after *evidence.Corpus, body string) (files []string, content bool) {
	if before == nil || after == nil {
		return nil, false
	}
	old := map[string]bool{}
	for _, f := range before.Files {
		old[f.Name] = true
	}
	for _, f := range after.Files {
		if !old[f.Name] && len(f.Data) >= len(body) {
			files = append(files, f.Name)
		}
	}
	return files, len(after.Find(evidence.TextNeedle("the file", body))) > 0
}

// dataOrBlind reads the stored data for the upload scans; nil (recorded
// as not examined) where the data channel is missing or unreadable.
func (e *Env) dataOrBlind(ctx context.Context, part string) (*evidence.Corpus, error) {
	if ok, _ := e.Target.Has(spec.CapData); !ok {
		return nil, nil
	}
	c, _, err := e.data(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		e.Blind(part, "the stored data could not be read (%v): fix evidence.data in the target file", err)
		return nil, nil
	}
	return c, nil
}

// checkUploadRetention: an uploaded file is gone just after max_age (HTTP
// 404 or 410, and its stored files and bytes gone from the data) and, when
// the policy gives min_age, still served just before it (XEP-0363; the
// deployment's purge job runs after each clock move). Controls: served
// right after upload; the server's clock proved moved (clockMoved); a file
// uploaded after the advance is served and shows in the data (its bytes,
// or a new file of its size).
func checkUploadRetention(ctx context.Context, e *Env) error {
	maxAge, minAge, err := e.retentionAges()
	if err != nil {
		return err
	}
	m := margin(maxAge)
	if !e.clockChannels() {
		return nil
	}
	acc, err := e.Accounts(ctx, "upret", "upret-probe")
	if err != nil {
		return err
	}
	a, probe := acc[0], acc[1]
	e.channel(spec.CapData, "stored data")
	base, _, err := e.serverTime(ctx, a, probe, "")
	if err != nil {
		return err
	}
	d0, err := e.dataOrBlind(ctx, "stored data")
	if err != nil {
		return err
	}
	body := retentionFile(UniqueName("xmppcheck-retention-file"))
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
	var d1 *evidence.Corpus
	if d0 != nil {
		if d1, err = e.dataOrBlind(ctx, "stored data"); err != nil {
			return err
		}
	}
	oldFiles, oldContent := uploadTrace(d0, d1, body)
	moved, err := e.minAgeStep(ctx, minAge, a, probe, base, "the file", func() (bool, string, error) {
		ok, st, err := e.served(ctx, url, body)
		return ok, map[bool]string{true: "served (" + st + ")", false: "NOT served before min_age (" + st + ")"}[ok], err
	})
	if err != nil {
		return err
	}
	if err := e.advance(ctx, maxAge+m-moved, "just after max_age"); err != nil {
		return err
	}
	total := maxAge + m
	proved, err := e.clockMoved(ctx, a, probe, "", base, total)
	if err != nil {
		return err
	}
	gone, st, err := e.fileGone(ctx, url, body)
	if err != nil {
		return err
	}
	// Control: a file uploaded now is served, and shows in the data.
	var d2, d3 *evidence.Corpus
	if d1 != nil {
		if d2, err = e.dataOrBlind(ctx, "stored data after max_age"); err != nil {
			return err
		}
	}
	fresh := retentionFile(UniqueName("xmppcheck-retention-control"))
	furl, err := e.uploadFile(ctx, a, fresh)
	if err != nil {
		return err
	}
	if ok, st, err := e.served(ctx, furl, fresh); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("a file uploaded after the advance is not served (%s): the upload service does not work, so a missing file proves nothing", st)
	}
	if d2 != nil {
		if d3, err = e.dataOrBlind(ctx, "stored data after max_age"); err != nil {
			return err
		}
	}
	if !proved {
		return nil
	}
	e.Observe("the file "+spec.FormatDuration(total)+" old (max_age "+spec.FormatDuration(maxAge)+")", gone, "%s", map[bool]string{true: "gone (" + st + ")", false: "STILL served after max_age (" + st + ")"}[gone])
	if d3 == nil {
		return nil
	}
	freshFiles, freshContent := uploadTrace(d2, d3, fresh)
	ctlOK := len(freshFiles) > 0 || freshContent
	seenOld := len(oldFiles) > 0 || oldContent
	switch {
	case !ctlOK:
		e.Blind("stored data after max_age", "a file uploaded by this spec after the advance shows in none of the %d stored file(s), %s (neither its bytes nor a new file of its size): the uploads may be kept outside evidence.data; fix the target file", len(d3.Files), size(d3.Size()))
	case !seenOld:
		e.Blind("stored data after max_age", "the file uploaded before the advance showed in none of the stored files (neither its bytes nor a new file of its size), so its absence proves nothing")
	default:
		e.Observe("stored data after max_age: positive control", true, "the file uploaded after the advance shows (%s)", listOr(freshFiles, "its bytes"))
	}
	e.judge("the expired file's bytes at rest", d3, ctlOK && seenOld, evidence.TextNeedle("the expired file", body), "gone")
	if len(oldFiles) > 0 {
		var remain []string
		for _, f := range d3.Files {
			if slices.Contains(oldFiles, f.Name) {
				remain = append(remain, f.Name)
			}
		}
		if len(remain) > 0 || ctlOK {
			e.Observe("the files stored for the expired upload", len(remain) == 0, "%s", listOr(remain, "all %d gone", len(oldFiles)))
		}
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

// checkSelfDeletion: after XEP-0077 remove the account cannot log in
// (SASL <not-authorized/>), its vCard is not served (item-not-found,
// service-unavailable or an empty vCard) nor its upload (HTTP 404 or 410),
// and its roster names, vCard and offline messages are gone from storage.
// The storage scan's control is the remaining contact's vCard, which
// stays; hits are attributed to their owner where the store says whose
// record it is.
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
	if err := e.loginGone(ctx, a, "login as the removed account"); err != nil {
		return err
	}
	cb, err = e.Session(ctx, b)
	if err != nil {
		return err
	}
	v, err := cb.GetVCard(ctx, e.Bare(a))
	cb.Close(ctx)
	if err := e.vCardGone(fp, v, err); err != nil {
		return err
	}
	if fp.url != "" {
		gone, st, err := e.fileGone(ctx, fp.url, fp.file)
		if err != nil {
			return fmt.Errorf("the removed account's upload: %w", err)
		}
		e.Observe("the removed account's upload", gone, "%s", map[bool]string{true: "gone (" + st + ")", false: "STILL served (" + st + ")"}[gone])
	}
	data, ok, err := e.dataWith(ctx, "stored data", evidence.TextNeedle("the remaining contact's vCard", keep))
	if err != nil || data == nil {
		return err
	}
	var hits []evidence.Hit
	for _, n := range fp.needles() {
		hits = append(hits, data.Find(n)...)
	}
	var own, contact, unknown []evidence.Hit
	for _, h := range hits {
		switch owner(h, a.User, b.User) {
		case a.User:
			own = append(own, h)
		case b.User:
			contact = append(contact, h)
		default:
			unknown = append(unknown, h)
		}
	}
	e.judgeHits("the removed account's roster, vCard and offline message at rest", data, ok, own, "gone")
	if len(contact) > 0 {
		e.Observe("records of the remaining contact", true, "%d hit(s) in %s's own records (e.g. %s): the contact's data, not the removed account's", len(contact), e.Bare(b), contact[0].File)
	}
	if len(unknown) > 0 {
		e.Blind("whose data", "%d hit(s) of the removed account's markers in records whose owner the store does not say (e.g. %s: %s): they may be the contact's (a copy of a message it sent) or the removed account's",
			len(unknown), unknown[0].File, unknown[0].Context)
	}
	return nil
}

// owner says whose record a hit is in, where the store tells: a file path
// naming one of the users (Prosody's HOST/STORE/USER.dat and .list, any
// per-user file), else a line (an SQL row, an ejabberd record) naming one
// and not the other. "" when it cannot tell.
func owner(h evidence.Hit, users ...string) string {
	name := h.File
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	base := path.Base(name)
	var inPath, inLine []string
	for _, u := range users {
		if strings.HasPrefix(base, u+".") || strings.Contains(name, "/"+u+"/") {
			inPath = append(inPath, u)
		}
		if strings.Contains(h.LineText, u) {
			inLine = append(inLine, u)
		}
	}
	switch {
	case len(inPath) == 1:
		return inPath[0]
	case len(inPath) == 0 && len(inLine) == 1:
		return inLine[0]
	}
	return ""
}

// loginGone logs in as a, deleted: gone only on SASL <not-authorized/>
// (RFC 6120 §6.5.10); a success is a violation; anything else (a timeout,
// a reset, another condition) is an error with what was seen.
func (e *Env) loginGone(ctx context.Context, a target.Account, what string) error {
	// The mechanisms a session would use (Session): SCRAM, else PLAIN.
	c, err := e.Client(ctx, xmppclient.WithMechanisms(append(slices.Clone(xmppclient.DefaultMechanisms), "SCRAM-SHA-512", "PLAIN")...))
	if err != nil {
		return err
	}
	err = c.Login(ctx, a.User, a.Password)
	c.Close(ctx)
	var se *xmppclient.SASLError
	switch {
	case err == nil:
		e.Observe(what, false, "SUCCEEDED: the account still exists")
	case errors.As(err, &se) && se.Condition == xmppclient.SASLNotAuthorized:
		e.Observe(what, true, "refused: <not-authorized/>")
	default:
		return fmt.Errorf("%s: neither accepted nor refused with <not-authorized/>: %w", what, err)
	}
	return nil
}

// vCardGone judges a contact's vCard fetch of the removed account: not
// served only on item-not-found or service-unavailable (RFC 6121 §8.5.1:
// no such account) or an empty vCard; the old vCard is a violation;
// anything else is an error with what was seen.
func (e *Env) vCardGone(fp footprint, v xmppclient.VCard, err error) error {
	const what = "the removed account's vCard, asked by a contact"
	var se *xmppclient.StanzaError
	switch {
	case errors.As(err, &se) && (se.Condition == "item-not-found" || se.Condition == "service-unavailable"):
		e.Observe(what, true, "not served: %s/%s", se.Type, se.Condition)
	case err != nil:
		return fmt.Errorf("%s: neither item-not-found nor an empty vCard: %w", what, err)
	case v.FN == fp.vcardFN || strings.Contains(v.Extra, fp.vcardNote):
		e.Observe(what, false, "still served")
	case v.FN == "" && strings.TrimSpace(v.Extra) == "":
		e.Observe(what, true, "an empty vCard")
	default:
		return fmt.Errorf("%s: neither item-not-found nor an empty vCard: a vCard with FN %q", what, v.FN)
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
