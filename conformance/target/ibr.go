package target

import (
	"context"
	"errors"
	"fmt"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// registerIBR creates a by in-band registration (XEP-0077 §3.1).
func registerIBR(ctx context.Context, addr, domain string, a Account) error {
	cl, err := xmppclient.Dial(ctx, addr, xmppclient.WithDomain(domain), xmppclient.WithInsecureSkipVerify())
	if err != nil {
		return fmt.Errorf("register %s: %w", a.User, err)
	}
	defer cl.Close(ctx)
	if err := cl.Register(ctx, a.User, a.Password, nil); err != nil {
		return fmt.Errorf("register %s: %w", a.User, err)
	}
	return nil
}

// unregisterIBR removes a by XEP-0077 §3.2; an account that cannot log in
// any more (already removed by the test) is not an error.
func unregisterIBR(ctx context.Context, addr, domain string, a Account) error {
	cl, err := xmppclient.Connect(ctx, addr, a.User, a.Password, xmppclient.WithDomain(domain), xmppclient.WithInsecureSkipVerify())
	if errors.Is(err, xmppclient.SASLNotAuthorized) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unregister %s: %w", a.User, err)
	}
	defer cl.Close(ctx)
	return cl.Unregister(ctx)
}
