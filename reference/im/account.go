package im

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/scramauth"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// Account errors.
var (
	ErrInvalidUsername = errors.New("im: invalid username")
	ErrUserExists      = errors.New("im: user already exists")
	ErrNoSuchUser      = errors.New("im: no such user")
)

// NormalizeUsername returns the PRECIS-normalised localpart of name (RFC
// 7622 §3.3), which may also be given as a bare JID on this domain.
func (r *Router) NormalizeUsername(name string) (string, error) {
	if strings.Contains(name, "@") {
		j, err := jid.Parse(name)
		if err != nil || j.Domainpart() != r.cfg.Domain || j.Resourcepart() != "" {
			return "", fmt.Errorf("%w: %q is not an address on %s", ErrInvalidUsername, name, r.cfg.Domain)
		}
		name = j.Localpart()
	}
	j, err := jid.New(name, r.cfg.Domain, "")
	if err != nil || j.Localpart() == "" {
		return "", fmt.Errorf("%w: %q", ErrInvalidUsername, name)
	}
	return j.Localpart(), nil
}

// CreateAccount creates an account with SCRAM credentials derived from
// password. email is stored only if given (XEP-0077 optional field).
func (r *Router) CreateAccount(name, password, email string) error {
	name, err := r.NormalizeUsername(name)
	if err != nil {
		return err
	}
	creds, err := scramauth.Derive(password, r.cfg.Iterations, r.cfg.Hashes...)
	if err != nil {
		return err
	}
	err = r.cfg.Store.CreateUser(store.User{Name: name, SCRAM: creds, Email: email})
	if errors.Is(err, store.ErrExists) {
		return ErrUserExists
	}
	if err == nil {
		// An operator's audit line: the account, never the address it
		// came from nor a session time.
		r.cfg.Logger.Info("account created", "user", name)
	}
	return err
}

// ChangePassword replaces an account's credentials (XEP-0077 §3.3).
func (r *Router) ChangePassword(name, password string) error {
	u, err := r.cfg.Store.User(name)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoSuchUser
	}
	if err != nil {
		return err
	}
	if u.SCRAM, err = scramauth.Derive(password, r.cfg.Iterations, r.cfg.Hashes...); err != nil {
		return err
	}
	return r.cfg.Store.PutUser(u)
}

// Credentials returns the stored SCRAM credentials of a user for a hash.
// The name is normalised first.
func (r *Router) Credentials(name, hash string) (store.Credentials, bool) {
	n, err := r.NormalizeUsername(name)
	if err != nil {
		return store.Credentials{}, false
	}
	u, err := r.cfg.Store.User(n)
	if err != nil {
		return store.Credentials{}, false
	}
	c, ok := u.SCRAM[hash]
	return c, ok
}

// RemoveAccount erases an account (XEP-0077 §3.2, account.self-deletion):
// its contacts get unsubscribe and unsubscribed so that no subscription
// survives on either side (RFC 6121 §2.5.2), components delete what they
// keep for it (uploads), the store deletes the account, roster, vCard and
// offline messages in one transaction, and every session of the account is
// closed. keep, if not nil, is the session that asked; it is closed last.
func (r *Router) RemoveAccount(ctx context.Context, name string, keep *Resource) error {
	name, err := r.NormalizeUsername(name)
	if err != nil {
		return err
	}
	if ok, err := r.cfg.Store.UserExists(name); err != nil {
		return err
	} else if !ok {
		return ErrNoSuchUser
	}
	bare, _ := jid.New(name, r.cfg.Domain, "")
	// Contacts first hear the account go offline.
	for _, res := range r.resourcesOf(name) {
		res.u.mu.Lock()
		was := res.available
		res.available = false
		directed := res.directed
		res.directed = nil
		res.u.mu.Unlock()
		if was || len(directed) > 0 {
			r.broadcastUnavailable(ctx, res, directed)
		}
	}
	roster, err := r.cfg.Store.Roster(name)
	if err != nil {
		return err
	}
	for _, it := range roster {
		cj, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		if it.Sub.HasTo() || it.Ask {
			r.sendSubscription(ctx, bare, cj, "unsubscribe")
		}
		if it.Sub.HasFrom() || it.PendingIn {
			r.sendSubscription(ctx, bare, cj, "unsubscribed")
		}
	}
	r.mu.RLock()
	hooks := slices.Clone(r.removedHooks)
	r.mu.RUnlock()
	for _, h := range hooks {
		if err := h(ctx, name); err != nil {
			return fmt.Errorf("im: remove account: %w", err)
		}
	}
	if err := r.cfg.Store.DeleteUser(name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if c, err := r.cfg.Store.CountOffline(); err == nil {
		r.offlineStored.Store(int64(c))
		r.cfg.Metrics.OfflineQueue.Set(float64(c))
	}
	for _, res := range r.resourcesOf(name) {
		if res != keep {
			res.sess.Close("not-authorized", "account deleted")
		}
	}
	r.cfg.Metrics.Registrations.WithLabelValues("removed").Inc()
	r.cfg.Logger.Info("account removed", "user", name)
	return nil
}

// registrationFields returns the fields of the form, required first.
func (r *Router) registrationFields() (required, optional []string) {
	req := r.cfg.Registration.Required
	if len(req) == 0 {
		req = []string{"username", "password"}
	}
	return req, r.cfg.Registration.Optional
}

// RegistrationForm is the XEP-0077 §3.1 form: the legacy fields and a data
// form (XEP-0004) asking exactly the policy's fields.
func (r *Router) RegistrationForm() *wire.Element {
	req, opt := r.registrationFields()
	q := wire.New(ns.Register, "query")
	q.Add(wire.New(ns.Register, "instructions").AddText(instructions(req, opt)))
	for _, f := range append(slices.Clone(req), opt...) {
		q.Add(wire.New(ns.Register, f))
	}
	x := wire.New(ns.DataForms, "x").SetAttr("type", "form")
	x.Add(wire.New(ns.DataForms, "title").AddText("Account registration"))
	x.Add(wire.New(ns.DataForms, "instructions").AddText(instructions(req, opt)))
	x.Add(wire.New(ns.DataForms, "field").SetAttr("var", "FORM_TYPE").SetAttr("type", "hidden").
		Add(wire.New(ns.DataForms, "value").AddText(ns.Register)))
	for _, f := range req {
		x.Add(formField(f, true))
	}
	for _, f := range opt {
		x.Add(formField(f, false))
	}
	return q.Add(x)
}

func instructions(req, opt []string) string {
	s := "Choose a " + strings.Join(req, " and a ") + "."
	if len(opt) > 0 {
		s += " Optional: " + strings.Join(opt, ", ") + "."
	}
	return s
}

func formField(name string, required bool) *wire.Element {
	typ := "text-single"
	if name == "password" {
		typ = "text-private"
	}
	label := strings.ToUpper(name[:1]) + name[1:]
	f := wire.New(ns.DataForms, "field").SetAttr("var", name).SetAttr("type", typ).SetAttr("label", label)
	if required {
		f.Add(wire.New(ns.DataForms, "required"))
	}
	return f
}

// submitted returns the values of a registration set: the data form's
// fields when there is one, else the legacy elements.
func submitted(q *wire.Element) map[string]string {
	v := map[string]string{}
	if x := q.Child(ns.DataForms, "x"); x != nil {
		for _, f := range x.Elements() {
			if f.Name.Local == "field" && f.Get("var") != "" {
				v[f.Get("var")] = f.ChildText(ns.DataForms, "value")
			}
		}
		return v
	}
	for _, c := range q.Elements() {
		if c.Name.Space == ns.Register {
			v[c.Name.Local] = c.Text()
		}
	}
	return v
}

// RegisterUnauthenticated answers an XEP-0077 IQ on a TLS-protected stream
// before authentication (§3.1): the form, or a registration. addr is the
// client's address for the rate limit (memory only).
func (r *Router) RegisterUnauthenticated(ctx context.Context, iq *wire.Element, addr string) *wire.Element {
	q := iq.FirstElement()
	reply := func(payload *wire.Element, se *host.StanzaError) *wire.Element {
		typ := "result"
		if se != nil {
			typ = "error"
		}
		el := wire.New(ns.Client, "iq").SetAttr("type", typ).SetAttr("id", iq.Get("id"))
		if se != nil {
			if q != nil {
				el.Add(q)
			}
			return el.Add(se.Element())
		}
		return el.Add(payload)
	}
	if r.cfg.Registration.Disabled {
		return reply(nil, host.ErrServiceUnavailable)
	}
	if q == nil || q.Name.Space != ns.Register || q.Name.Local != "query" || len(iq.Elements()) != 1 {
		return reply(nil, host.ErrServiceUnavailable)
	}
	switch iq.Get("type") {
	case "get":
		return reply(r.RegistrationForm(), nil)
	case "set":
		if q.Child(ns.Register, "remove") != nil {
			// Removal needs an authenticated stream (§3.2).
			return reply(nil, host.Errorf(host.ErrTypeAuth, "not-authorized", "authenticate before removing an account"))
		}
		return reply(nil, r.register(submitted(q), addr))
	}
	return reply(nil, host.ErrBadRequest)
}

// register creates an account from submitted values.
func (r *Router) register(v map[string]string, addr string) *host.StanzaError {
	req, opt := r.registrationFields()
	for _, f := range req {
		if strings.TrimSpace(v[f]) == "" {
			r.cfg.Metrics.Registrations.WithLabelValues("invalid").Inc()
			return host.Errorf(host.ErrTypeModify, "not-acceptable", "the %s field is required", f)
		}
	}
	if r.regLimit != nil {
		if ok, wait := r.regLimit.Allow(addr); !ok {
			r.cfg.Metrics.Registrations.WithLabelValues("refused_rate").Inc()
			return host.Errorf(host.ErrTypeWait, "policy-violation",
				"too many registrations from your address: at most %d per %s; try again in %s",
				r.regLimit.Max(), r.regLimit.Span(), wait.Round(1e9))
		}
	}
	email := ""
	if slices.Contains(opt, "email") || slices.Contains(req, "email") {
		email = strings.TrimSpace(v["email"])
	}
	err := r.CreateAccount(v["username"], v["password"], email)
	switch {
	case errors.Is(err, ErrUserExists):
		r.cfg.Metrics.Registrations.WithLabelValues("conflict").Inc()
		return host.Errorf(host.ErrTypeCancel, "conflict", "the username is taken")
	case errors.Is(err, ErrInvalidUsername):
		r.cfg.Metrics.Registrations.WithLabelValues("invalid").Inc()
		return host.Errorf(host.ErrTypeModify, "jid-malformed", "the username is not a valid localpart")
	case err != nil:
		r.cfg.Metrics.Registrations.WithLabelValues("invalid").Inc()
		return host.Errorf(host.ErrTypeModify, "not-acceptable", "%v", err)
	}
	if r.regLimit != nil {
		r.regLimit.Add(addr)
	}
	r.cfg.Metrics.Registrations.WithLabelValues("created").Inc()
	return nil
}

// registerIQ answers XEP-0077 on an authenticated stream: the registration
// state (§3.2), a password change (§3.3) or account removal (§3.2).
func (r *Router) registerIQ(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	if !iq.Local {
		return nil, host.ErrServiceUnavailable
	}
	user := iq.From.Localpart()
	switch iq.Type {
	case "get":
		q := wire.New(ns.Register, "query").Add(wire.New(ns.Register, "registered"))
		q.Add(wire.New(ns.Register, "username").AddText(user))
		q.Add(wire.New(ns.Register, "password"))
		return q, nil
	case "set":
		if iq.Payload.Child(ns.Register, "remove") != nil {
			res := r.resourceByJID(iq.From)
			if err := r.RemoveAccount(ctx, user, res); err != nil {
				return nil, err
			}
			if res != nil {
				// The result goes out first, then the stream closes.
				result := wire.New(ns.Client, "iq").SetAttr("type", "result").SetAttr("id", iq.Stanza.Get("id")).SetAttr("to", iq.From.String())
				res.sess.Send(marshal(result))
				res.sess.Close("not-authorized", "account deleted")
				return nil, errAnswered
			}
			return nil, nil
		}
		v := submitted(iq.Payload)
		if v["username"] != "" {
			if n, err := r.NormalizeUsername(v["username"]); err != nil || n != user {
				return nil, host.Errorf(host.ErrTypeModify, "bad-request", "the username must be the account's own")
			}
		}
		if v["password"] == "" {
			return nil, host.Errorf(host.ErrTypeModify, "bad-request", "no password given")
		}
		if err := r.ChangePassword(user, v["password"]); err != nil {
			return nil, err
		}
		r.cfg.Metrics.Registrations.WithLabelValues("password_changed").Inc()
		return nil, nil
	}
	return nil, host.ErrBadRequest
}

// errAnswered tells answer that the handler already replied.
var errAnswered = errors.New("im: answered")

func (r *Router) resourceByJID(j jid.JID) *Resource {
	for _, res := range r.resourcesOf(j.Localpart()) {
		if res.jid.Equal(j) {
			return res
		}
	}
	return nil
}

// RegistrationEnabled reports whether in-band registration is offered.
func (r *Router) RegistrationEnabled() bool { return !r.cfg.Registration.Disabled }
