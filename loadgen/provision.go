package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// Provisioner creates one account on the server under load.
type Provisioner func(ctx context.Context, a Account) error

// RegisterIBR creates accounts by in-band registration (XEP-0077); an
// account that already exists (conflict) counts as created.
func RegisterIBR(t Target, timeout time.Duration) Provisioner {
	return func(ctx context.Context, a Account) error {
		opts := []xmppclient.Option{xmppclient.WithDomain(t.Domain), xmppclient.WithTLSMode(t.TLSMode), xmppclient.WithTimeout(timeout)}
		if t.RootCAs != nil {
			opts = append(opts, xmppclient.WithRootCAs(t.RootCAs))
		} else {
			opts = append(opts, xmppclient.WithInsecureSkipVerify())
		}
		c, err := xmppclient.Dial(ctx, t.Addr, opts...)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		err = c.Register(ctx, a.User, a.Password, nil)
		if errors.Is(err, stanza.Error{Condition: stanza.Conflict}) {
			return nil
		}
		return err
	}
}

// ProvisionCommand runs a shell command per account, with {user},
// {password} and {domain} replaced by shell-quoted values, e.g.
// "prosodyctl register {user} {domain} {password}".
func ProvisionCommand(cmd, domain string) Provisioner {
	return func(ctx context.Context, a Account) error {
		line := strings.NewReplacer("{user}", shellQuote(a.User), "{password}", shellQuote(a.Password), "{domain}", shellQuote(domain)).Replace(cmd)
		out, err := exec.CommandContext(ctx, "sh", "-c", line).CombinedOutput()
		if err != nil {
			msg := strings.ReplaceAll(strings.TrimSpace(string(out)), a.Password, "[redacted]")
			return fmt.Errorf("provision %s: %w: %s", a.User, err, msg)
		}
		return nil
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Provision creates accounts with p, with at most parallel at once, and
// returns the first error (after trying them all) and how many failed.
func Provision(ctx context.Context, accts []Account, parallel int, p Provisioner) (failed int, err error) {
	if parallel < 1 {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, a := range accts {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if e := p(ctx, a); e != nil {
				mu.Lock()
				failed++
				if first == nil {
					first = e
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return failed, fmt.Errorf("loadgen: provisioning: %d of %d accounts failed, first: %w", failed, len(accts), first)
	}
	return 0, ctx.Err()
}

// ShardAccounts returns the accounts shard i of n uses.
func ShardAccounts(accts []Account, users, i, n int) []Account {
	lo, hi := ShardRange(users, i, n)
	return accts[lo:hi]
}
