package target

import (
	"context"

	itarget "github.com/xmppcheck/xmppcheck/internal/target"
)

// registerIBR creates a by in-band registration (XEP-0077 §3.1).
func registerIBR(ctx context.Context, addr, domain string, a Account) error {
	return itarget.RegisterIBR(ctx, addr, domain, a.User, a.Password)
}

// unregisterIBR removes a by XEP-0077 §3.2; an account that cannot log in
// any more (already removed by the test) is not an error.
func unregisterIBR(ctx context.Context, addr, domain string, a Account) error {
	return itarget.UnregisterIBR(ctx, addr, domain, a.User, a.Password)
}
