package conformance

import (
	"context"
	"errors"
	"fmt"

	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

// DisposableAccounts creates one account per hint that the spec may remove
// or change (XEP-0077 remove, address reuse): never an account the user
// supplied. Where the target can make none the claim is not testable.
func (e *Env) DisposableAccounts(ctx context.Context, hints ...string) ([]target.Account, error) {
	if err := e.Need(spec.CapAccounts); err != nil {
		return nil, err
	}
	out := make([]target.Account, 0, len(hints))
	for _, h := range hints {
		a, err := target.NewDisposableAccount(ctx, e.Target, h)
		if errors.Is(err, target.ErrNoDisposableAccount) || errors.Is(err, target.ErrNoAccount) {
			return nil, notTestablef("%v", err)
		}
		var se *xmppclient.StanzaError
		if errors.As(err, &se) {
			// The server answered the registration with a refusal: no
			// throwaway account to be had now (often its per-address
			// registration limit, spent by this run's own throwaways).
			return nil, notTestablef("the server refused to register a throwaway account (%s/%s%s): run the claims that need one on their own (--claims), or later", se.Type, se.Condition, textOf(se.Text))
		}
		if err != nil {
			return nil, fmt.Errorf("create throwaway account: %w", err)
		}
		e.Transcript.AddSecret(a.Password)
		e.accounts = append(e.accounts, a)
		e.Transcript.Notef("throwaway account %s@%s (created for this spec, removed at its end)", a.User, e.Target.Domain())
		out = append(out, a)
	}
	return out, nil
}

// errSuppliedAccount: a spec tried to remove an account the user supplied.
var errSuppliedAccount = errors.New("refusing to remove an account xmppcheck did not create")

// PreferDisposableAccount is Account, except that where the target can
// make an account the spec may disturb (a remote target with --ibr) it
// uses one: a check whose failed logins could lock out an account
// (auth.brute-force-protection) then never touches a supplied account
// when it need not.
func (e *Env) PreferDisposableAccount(ctx context.Context, hint string) (target.Account, error) {
	if _, ok := e.Target.(target.DisposableAccounter); ok {
		acc, err := e.DisposableAccounts(ctx, hint)
		var ve *verdictError
		if !errors.As(err, &ve) {
			if err != nil {
				return target.Account{}, err
			}
			return acc[0], nil
		}
	}
	return e.Account(ctx, hint)
}

func textOf(t string) string {
	if t == "" {
		return ""
	}
	return fmt.Sprintf(": %q", t)
}
