package target

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoDisposableAccount is wrapped when a spec needs an account it may
// destroy (XEP-0077 remove, address reuse) and the target can only hand
// out accounts the user supplied: those are never removed or changed, so
// the claim is not testable there.
var ErrNoDisposableAccount = errors.New("target: no disposable account")

// DisposableAccounter is implemented by targets that decide themselves
// which accounts a spec may destroy (the remote target: only accounts it
// registered in-band, never the ones the user supplied).
type DisposableAccounter interface {
	NewDisposableAccount(ctx context.Context, hint string) (Account, error)
}

// NewDisposableAccount returns an account that t created for this spec and
// that the spec may remove or change (XEP-0077 remove). A supplied account
// (Created false) is never returned: it goes back to t and the error wraps
// ErrNoDisposableAccount.
func NewDisposableAccount(ctx context.Context, t Target, hint string) (Account, error) {
	if d, ok := t.(DisposableAccounter); ok {
		return d.NewDisposableAccount(ctx, hint)
	}
	a, err := t.NewAccount(ctx, hint)
	if err != nil {
		return a, err
	}
	if !a.Created {
		// Hands it back (remote-like targets release, never delete, a
		// supplied account).
		t.DeleteAccount(ctx, a)
		return Account{}, fmt.Errorf("%w: %s hands out only supplied accounts", ErrNoDisposableAccount, t.Info().Kind)
	}
	return a, nil
}

// throwawayPrefix starts the name of every account a remote target
// registers in-band, so an operator sees in their user list what it is.
const throwawayPrefix = "xmppcheck-throwaway-"

// NewDisposableAccount registers a throwaway account in-band (--ibr); the
// accounts given with --account are never handed out for a spec that
// removes or changes its account.
func (r *Remote) NewDisposableAccount(ctx context.Context, hint string) (Account, error) {
	if !r.ibr {
		return Account{}, fmt.Errorf("%w: the spec removes its account, and a remote target never removes an account it did not create (allow throwaway accounts with --ibr)", ErrNoDisposableAccount)
	}
	a := Account{User: throwawayPrefix + hint + "-" + randomHex(5), Password: "pw-" + randomHex(12), Created: true}
	return a, registerIBR(ctx, r.addrs.C2S, r.domain, a)
}
