package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

func init() {
	checks[spec.MAMDisabled] = checkMAMDisabled
	checks[spec.RegistrationMinimalData] = checkRegistrationMinimal
	checks[spec.RegistrationRateLimited] = checkRegistrationRateLimited
	checks[spec.AuthBruteForce] = checkBruteForce
	checks[spec.UploadUnguessableURL] = checkUploadURLs
}

// noFeatureConditions are the stanza errors that prove an entity offers
// no such service (RFC 6120 §8.3.3.19 service-unavailable, §8.3.3.7
// feature-not-implemented, §8.3.3.8 item-not-found): the answers a server
// without disco on an account's bare JID gives (RFC 6121 §8.5.3.1).
var noFeatureConditions = []string{"service-unavailable", "feature-not-implemented", "item-not-found"}

// archiveRefusals are the stanza errors that prove an archive query
// (XEP-0313 §4) was refused: a server without MAM answers an IQ of an
// unknown namespace with service-unavailable (RFC 6120 §8.4) or
// feature-not-implemented; one with MAM turned off for the account may
// answer not-allowed or forbidden. item-not-found is not among them:
// XEP-0313 uses it for a paging id an archive does not hold.
var archiveRefusals = []string{"service-unavailable", "feature-not-implemented", "not-allowed", "forbidden"}

// checkMAMDisabled: no urn:xmpp:mam feature on the server or the account
// (XEP-0313 §6, XEP-0030), and an archive query after a delivered message
// is refused (docs/compliant-outcomes.md). A disco#info answered with
// features is judged by them; an error counts as "no MAM" only with a
// condition of noFeatureConditions, and the server's own disco#info must
// answer (it is the positive control that disco works at all). Anything
// else — a timeout, a reset, another condition — is an error.
func checkMAMDisabled(ctx context.Context, e *Env) error {
	acc, err := e.Accounts(ctx, "mam-a", "mam-b")
	if err != nil {
		return err
	}
	a, b := acc[0], acc[1]
	ca, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	cb, err := e.Session(ctx, b)
	if err != nil {
		return err
	}
	for _, to := range []string{"", e.Bare(a)} {
		what := "disco#info of the server"
		if to != "" {
			what = "disco#info of the account " + to
		}
		info, err := ca.DiscoInfo(ctx, to, "")
		var se *xmppclient.StanzaError
		switch {
		case err == nil:
		case errors.As(err, &se) && to != "" && slices.Contains(noFeatureConditions, string(se.Condition)):
			e.Observe(what, true, "refused with %s/%s: the account offers no services, MAM included", se.Type, se.Condition)
			continue
		case errors.As(err, &se):
			return fmt.Errorf("%s: answered %s/%s, which does not say whether MAM is offered", what, se.Type, se.Condition)
		default:
			return fmt.Errorf("%s: no answer (%w): nothing proves the absence of MAM", what, err)
		}
		var mam []string
		for _, f := range info.Features {
			if strings.HasPrefix(f, "urn:xmpp:mam:") {
				mam = append(mam, f)
			}
		}
		e.Observe(what, len(mam) == 0, "%s", listOr(mam, "no urn:xmpp:mam feature among %d features", len(info.Features)))
	}
	// A delivered message that an archive would keep.
	if err := ca.SendPresence(ctx, "", "", ""); err != nil {
		return err
	}
	if err := cb.SendPresence(ctx, "", "", ""); err != nil {
		return err
	}
	marker := UniqueName("mam-marker")
	if _, err := cb.SendMessage(ctx, ca.JID(), "archive me? "+marker); err != nil {
		return err
	}
	if _, err := ca.RecvMatch(ctx, func(s xmppclient.Stanza) bool { return strings.Contains(s.Body(), marker) }); err != nil {
		return fmt.Errorf("the test message was not delivered: %w", err)
	}
	e.Observe("delivery of a test message (control)", true, "delivered online")
	res, err := ca.QueryArchive(ctx, "")
	var se *xmppclient.StanzaError
	switch {
	case errors.As(err, &se) && slices.Contains(archiveRefusals, string(se.Condition)):
		e.Observe("XEP-0313 archive query", true, "refused: %s/%s", se.Type, se.Condition)
	case errors.As(err, &se):
		return fmt.Errorf("XEP-0313 archive query: answered %s/%s, which is not a refusal of the archive (expected one of %s)", se.Type, se.Condition, strings.Join(archiveRefusals, ", "))
	case err != nil:
		return fmt.Errorf("XEP-0313 archive query: no answer (%w): a timeout is no refusal", err)
	default:
		found := 0
		for _, m := range res.Messages {
			if strings.Contains(m.Raw, marker) {
				found++
			}
		}
		e.Observe("XEP-0313 archive query", false, "answered with a result (%d archived message(s), %d of them the test message)", len(res.Messages), found)
	}
	return nil
}

func listOr(items []string, none string, args ...any) string {
	if len(items) == 0 {
		return fmt.Sprintf(none, args...)
	}
	return strings.Join(items, ", ")
}

// noRegistrationConditions are the answers to a registration form request
// that say the server offers no in-band registration (XEP-0077 §3.1,
// RFC 6120 §8.4).
var noRegistrationConditions = []string{"service-unavailable", "feature-not-implemented", "not-allowed", "forbidden"}

// captchaFields are XEP-0158 CAPTCHA form fields: a challenge, not
// personal data.
var captchaFields = []string{"FORM_TYPE", "challenge", "sid", "from", "ocr", "qa", "audio_recog", "picture_recog", "picture_q", "speech_q", "speech_recog", "video_q", "video_recog"}

// checkRegistrationMinimal: the XEP-0077 form asks for nothing beyond the
// policy's required and optional fields, requires nothing beyond the
// required ones, and (where the spec may create accounts) registering with
// the required fields alone works.
func checkRegistrationMinimal(ctx context.Context, e *Env) error {
	required := e.Claim.Params.Fields("required")
	optional := e.Claim.Params.Fields("optional")
	c, err := e.Client(ctx)
	if err != nil {
		return err
	}
	rf, err := c.RegistrationForm(ctx)
	var se *xmppclient.StanzaError
	if errors.As(err, &se) && slices.Contains(noRegistrationConditions, string(se.Condition)) {
		return notTestablef("the server offers no in-band registration (XEP-0077): %s/%s", se.Type, se.Condition)
	}
	if errors.As(err, &se) {
		return fmt.Errorf("registration form: answered %s/%s, which neither gives a form nor says in-band registration is off", se.Type, se.Condition)
	}
	if err != nil {
		return err
	}
	if rf.Form != nil {
		// XEP-0077 §4: a data form supersedes the legacy fields.
		var asked []string
		for _, f := range rf.FormFields {
			if f.Type == "hidden" || f.Type == "fixed" || slices.Contains(captchaFields, f.Var) {
				continue
			}
			asked = append(asked, f.Var)
			if !slices.Contains(required, f.Var) && !slices.Contains(optional, f.Var) {
				e.Observe("data form field "+f.Var, false, "asked for (%s, required=%v), not allowed by the policy", orDash(f.Label), f.Required)
			} else if f.Required && !slices.Contains(required, f.Var) {
				e.Observe("data form field "+f.Var, false, "marked required; the policy allows it only as optional")
			}
		}
		e.Observe("registration data form", true, "fields asked: %s", strings.Join(asked, ", "))
	}
	// Legacy fields are required (XEP-0077 §3.1) unless registering without
	// them works: fields the policy allows only as optional are checked by
	// registering with the required fields alone.
	var unresolved []string
	if rf.Form == nil {
		for _, f := range rf.Fields {
			switch {
			case slices.Contains(required, f):
			case slices.Contains(optional, f):
				unresolved = append(unresolved, f)
			default:
				e.Observe("registration field "+f, false, "asked for; the policy allows only %s", strings.Join(append(slices.Clone(required), optional...), ", "))
			}
		}
		e.Observe("registration form", true, "legacy fields asked: %s", strings.Join(rf.Fields, ", "))
	}
	if !e.canCreateAccounts() {
		if len(unresolved) > 0 && !e.failed() {
			return notTestablef("the form lists %s, which XEP-0077 §3.1 makes required; registering without it would tell, but the spec may not create accounts on this target", strings.Join(unresolved, ", "))
		}
		e.Observe("registering with the required fields only", true, "not tried: the spec may not create accounts on this target")
		return nil
	}
	a := target.Account{User: UniqueName("reg-min"), Password: UniqueName("pw"), Created: true}
	err = e.Register(ctx, a.User, a.Password)
	switch {
	case errors.As(err, &se) && len(unresolved) > 0:
		e.Observe("registering with "+strings.Join(required, " and ")+" only", false, "refused (%s/%s): %s is in fact required", se.Type, se.Condition, strings.Join(unresolved, ", "))
		return nil
	case errors.As(err, &se) && e.failed():
		e.Observe("registering with "+strings.Join(required, " and ")+" only", false, "refused (%s/%s): the form's demands are real", se.Type, se.Condition)
		return nil
	case errors.As(err, &se):
		return notTestablef("registration with %s only is refused (%s/%s): cannot tell whether more data is demanded", strings.Join(required, " and "), se.Type, se.Condition)
	case err != nil:
		return err
	}
	e.accounts = append(e.accounts, a)
	note := ""
	if len(unresolved) > 0 {
		note = "; so " + strings.Join(unresolved, ", ") + " is optional in practice"
	}
	e.Observe("registering with "+strings.Join(required, " and ")+" only", true, "account %s created%s", e.Bare(a), note)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "no label"
	}
	return "“" + s + "”"
}

// registrationRefusals are the stanza errors that prove a registration
// was refused (XEP-0077 §3.1; RFC 6120 §8.3.3): servers limiting
// registrations per address answer policy-violation (the reference,
// Prosody), resource-constraint (ejabberd), not-allowed (Tigase),
// not-acceptable or forbidden; service-unavailable once registration is
// closed. conflict (a name taken), bad-request, internal-server-error and
// the rest are not refusals of mass registration.
var registrationRefusals = []string{"policy-violation", "resource-constraint", "not-allowed", "not-acceptable", "forbidden", "service-unavailable"}

// checkRegistrationRateLimited: from one address, max registrations within
// the window work and the next one is refused (XEP-0077 §3; policy
// "mass registration"). A refusal is a stanza error of
// registrationRefusals or the server closing the stream; anything else,
// a timeout included, is an error (docs/compliant-outcomes.md).
func checkRegistrationRateLimited(ctx context.Context, e *Env) error {
	if !e.canCreateAccounts() {
		return notTestablef("the spec may not create accounts on this target (remote without --ibr)")
	}
	max := e.Claim.Params.Count("max")
	window := e.Claim.Params.Duration("window")
	for i := 1; i <= max+1; i++ {
		a := target.Account{User: UniqueName("reg-rate"), Password: UniqueName("pw"), Created: true}
		err := e.RegisterFilling(ctx, a.User, a.Password)
		var se *xmppclient.StanzaError
		if errors.As(err, &se) && i > 1 && !slices.Contains(registrationRefusals, string(se.Condition)) {
			return fmt.Errorf("registration %d: answered %s/%s, which is not a refusal (expected one of %s)", i, se.Type, se.Condition, strings.Join(registrationRefusals, ", "))
		}
		switch {
		case err == nil && i <= max:
			e.accounts = append(e.accounts, a)
		case err == nil:
			e.accounts = append(e.accounts, a)
			e.Observe(fmt.Sprintf("registration %d from %s", i, addrOr(e)), false, "accepted: more than %d registrations from one address within %s", max, spec.FormatDuration(window))
		case errors.As(err, &se) && i == 1:
			return notTestablef("the first registration is refused (%s/%s): in-band registration is not open", se.Type, se.Condition)
		case errors.As(err, &se) && i <= max:
			// Stricter than the policy, or earlier registrations from the
			// same address (behind a container's proxy every client shares
			// one) share the window: mass registration is refused either way.
			e.Observe(fmt.Sprintf("registrations 1–%d from %s", i-1, addrOr(e)), true, "accepted")
			e.Observe(fmt.Sprintf("registration %d from %s", i, addrOr(e)), true, "refused (at or before the limit of %d): %s/%s %s", max, se.Type, se.Condition, se.Text)
			return nil
		case errors.As(err, &se):
			e.Observe(fmt.Sprintf("registration %d from %s", i, addrOr(e)), true, "refused: %s/%s %s", se.Type, se.Condition, se.Text)
		case errors.Is(err, xmppclient.ErrClosed) && i > max:
			e.Observe(fmt.Sprintf("registration %d from %s", i, addrOr(e)), true, "refused: the server closed the stream (%v)", err)
		default:
			return fmt.Errorf("registration %d: %w", i, err)
		}
	}
	e.Observe(fmt.Sprintf("registrations 1–%d", max), true, "accepted (within the limit)")
	return nil
}

func addrOr(e *Env) string {
	if e.local.IsValid() {
		return e.local.String()
	}
	return "this client"
}

// lockoutStreamConditions are the stream errors that prove a server
// refused a client's stream (RFC 6120 §4.9.3.14 policy-violation,
// §4.9.3.12 not-authorized, §4.9.3.15 resource-constraint).
var lockoutStreamConditions = []xmppclient.StreamCondition{xmppclient.StreamPolicyViolation, xmppclient.StreamNotAuthorized, xmppclient.StreamResourceConstraint}

// lockoutSASLConditions are the SASL <failure/> conditions that, given to
// the correct password, prove a refusal (RFC 6120 §6.5.10
// temporary-auth-failure, §6.5.8 not-authorized, §6.5.2 account-disabled).
var lockoutSASLConditions = []xmppclient.SASLCondition{xmppclient.SASLTemporaryAuthFailure, xmppclient.SASLNotAuthorized, xmppclient.SASLAccountDisabled}

// refusal says whether err is a refusal the server made
// (docs/compliant-outcomes.md): a connection refused (RST to the SYN),
// a stream or connection closed by the server without an answer, a
// stream error of lockoutStreamConditions, or a SASL <failure/> of
// lockoutSASLConditions. It returns what was seen either way; a timeout,
// another condition or any other error is no refusal.
func refusal(err error) (bool, string) {
	var se *xmppclient.StreamError
	var sasl *xmppclient.SASLError
	switch {
	case errors.As(err, &se):
		if slices.Contains(lockoutStreamConditions, se.Condition) {
			return true, fmt.Sprintf("the server ended the stream with <%s/>", se.Condition)
		}
		return false, fmt.Sprintf("a stream error <%s/>, not a refusal condition", se.Condition)
	case errors.As(err, &sasl):
		if slices.Contains(lockoutSASLConditions, sasl.Condition) {
			return true, fmt.Sprintf("SASL <failure><%s/></failure>", sasl.Condition)
		}
		return false, fmt.Sprintf("SASL failure %s, not a refusal condition", orDash(string(sasl.Condition)+sasl.Other))
	case errors.Is(err, xmppclient.ErrTimeout):
		return false, fmt.Sprintf("no answer before the deadline (%v)", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return true, fmt.Sprintf("connection refused (%v)", err)
	case errors.Is(err, xmppclient.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true, fmt.Sprintf("the server closed the connection without answering (%v)", err)
	}
	return false, err.Error()
}

// checkBruteForce: the correct password works from an address; after
// max_failures wrong ones from it, even the correct password is refused
// (RFC 6120 §6.5). Only a refusal the server made counts (refusal): a
// timeout, a reset or a condition that is not a refusal ends in error.
// Every wrong password must be answered with a SASL <failure/> (or a
// refusal, the lockout coming sooner than the policy allows).
func checkBruteForce(ctx context.Context, e *Env) error {
	n := e.Claim.Params.Count("max_failures")
	a, err := e.PreferDisposableAccount(ctx, "brute") // issue 12: spare supplied accounts a lockout
	if err != nil {
		return err
	}
	c, err := e.Session(ctx, a)
	if err != nil {
		return fmt.Errorf("control login with the correct password: %w", err)
	}
	c.Close(ctx)
	e.Observe("login with the correct password (control)", true, "succeeded from %s", addrOr(e))
	for i := 1; i <= n; i++ {
		c, err := e.Client(ctx)
		if err == nil {
			err = c.Login(ctx, a.User, "wrong-"+UniqueName("pw"))
			c.Close(ctx)
		}
		var sasl *xmppclient.SASLError
		switch ok, seen := refusal(err); {
		case err == nil:
			return fmt.Errorf("a wrong password was accepted")
		case errors.As(err, &sasl) && ok:
			continue
		case ok && i > 1:
			e.Observe(fmt.Sprintf("failed login %d", i), true, "refused after %d failures: %s", i-1, seen)
			return nil
		default:
			return fmt.Errorf("failed login %d: neither a SASL failure nor a refusal: %s", i, seen)
		}
	}
	e.Observe(fmt.Sprintf("%d failed logins", n), true, "all refused with a SASL failure")
	const what = "the correct password after the failures"
	c, err = e.Client(ctx)
	if err == nil {
		err = c.Login(ctx, a.User, a.Password)
	}
	if err == nil {
		e.Observe(what, false, "login SUCCEEDED after %d failures from %s: no lockout", n, addrOr(e))
		return nil
	}
	ok, seen := refusal(err)
	if !ok {
		return fmt.Errorf("%s: neither a login nor a refusal the server made: %s", what, seen)
	}
	e.Observe(what, true, "refused: %s", seen)
	return nil
}

// checkUploadURLs: slot URLs for the same request carry at least
// min_entropy_bits of randomness (estimated over many slots), and no URL
// above a slot lists other slots (XEP-0363 §5, §11).
func checkUploadURLs(ctx context.Context, e *Env) error {
	const slots = 128
	a, err := e.Account(ctx, "upload")
	if err != nil {
		return err
	}
	c, err := e.Session(ctx, a)
	if err != nil {
		return err
	}
	svc, err := uploadService(ctx, c, e.Target.Domain())
	if err != nil {
		return err
	}
	body := "xmppcheck upload " + UniqueName("u")
	var gets []string
	var first xmppclient.UploadSlot
	for i := range slots {
		s, err := c.RequestUploadSlot(ctx, svc, "photo.jpg", int64(len(body)), "image/jpeg")
		if err != nil {
			return fmt.Errorf("slot %d: %w", i+1, err)
		}
		if i == 0 {
			first = s
		}
		gets = append(gets, s.GetURL)
	}
	est, err := evidence.EstimateURLEntropy(gets)
	if err != nil {
		return err
	}
	min := float64(e.Claim.Params.Count("min_entropy_bits"))
	e.Observe(fmt.Sprintf("randomness of %d slot URLs", slots), est.Bits >= min && est.Duplicates == 0,
		"%.1f bits estimated (need %.0f), %d duplicate(s); e.g. %s; %s", est.Bits, min, est.Duplicates, first.GetURL, strings.Join(est.Detail, "; "))
	// Upload one file, then look for listings above it.
	hc, err := e.HTTPClient()
	if err != nil {
		if e.failed() {
			return nil // the URLs already fail the claim
		}
		return err
	}
	if err := put(ctx, hc, first, "image/jpeg", body); err != nil {
		return err
	}
	got, code, err := get(ctx, hc, first.GetURL)
	if err != nil {
		return err
	}
	if code != http.StatusOK || got != body {
		return fmt.Errorf("the uploaded file is not served back (HTTP %d): nothing to compare listings with", code)
	}
	e.Observe("the uploaded file (control)", true, "served back: HTTP %d", code)
	u, err := url.Parse(first.GetURL)
	if err != nil {
		return err
	}
	token := lastSegments(u.Path)
	for p := path.Dir(u.Path); ; p = path.Dir(p) {
		lu := *u
		lu.Path = strings.TrimSuffix(p, "/") + "/"
		page, code, err := get(ctx, hc, lu.String())
		if err != nil {
			return err
		}
		leak := code == http.StatusOK && containsSub(token, page)
		e.Observe("GET "+lu.Path, !leak, "HTTP %d%s", code, map[bool]string{true: ": lists the slot", false: ""}[leak])
		if p == "/" || p == "." {
			break
		}
	}
	return nil
}

// lastSegments returns the path segments of a slot URL that are long
// enough to be its secret (for listing detection).
func lastSegments(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if len(s) >= 8 && s != "photo.jpg" {
			out = append(out, s)
		}
	}
	return out
}

// containsSub reports whether s contains any of subs.
func containsSub(subs []string, s string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func put(ctx context.Context, hc *http.Client, s xmppclient.UploadSlot, contentType, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.PutURL, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range s.PutHeaders {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("upload PUT: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload PUT: HTTP %s", resp.Status)
	}
	return nil
}

func get(ctx context.Context, hc *http.Client, u string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(b), resp.StatusCode, err
}
