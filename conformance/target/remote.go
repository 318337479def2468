package target

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/spec"
)

// Remote is a live deployment reached over the network. Its logs, data
// directory and clock are out of reach: the parts of claims examining
// those channels are not testable on it.
type Remote struct {
	domain   string
	addrs    Addrs
	mu       sync.Mutex
	accounts []Account
	next     int
	ibr      bool
}

// RemoteOption configures a Remote target.
type RemoteOption func(*Remote)

// WithAccount gives the target an existing account ("user@domain:password"
// or "user:password").
func WithAccount(a Account) RemoteOption {
	return func(r *Remote) { r.accounts = append(r.accounts, a) }
}

// WithIBR allows creating throwaway accounts by in-band registration.
func WithIBR() RemoteOption { return func(r *Remote) { r.ibr = true } }

// WithRemoteAddrs sets the direct TLS, s2s and HTTP addresses.
func WithRemoteAddrs(a Addrs) RemoteOption {
	return func(r *Remote) {
		c2s := r.addrs.C2S
		r.addrs = a
		if r.addrs.C2S == "" {
			r.addrs.C2S = c2s
		}
	}
}

// NewRemote returns a target for the server at c2s (host:port of the
// STARTTLS client port) serving domain.
func NewRemote(c2s, domain string, opts ...RemoteOption) *Remote {
	r := &Remote{domain: domain, addrs: Addrs{C2S: c2s}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// ParseAccount parses "user@domain:password" or "user:password".
func ParseAccount(s, domain string) (Account, error) {
	user, pw, ok := strings.Cut(s, ":")
	if !ok || user == "" || pw == "" {
		return Account{}, fmt.Errorf("target: account %q: want JID:PASSWORD", redactAccount(s))
	}
	if local, dom, ok := strings.Cut(user, "@"); ok {
		if dom != domain {
			return Account{}, fmt.Errorf("target: account %s: domain %s is not the target's %s", local+"@"+dom, dom, domain)
		}
		user = local
	}
	return Account{User: user, Password: pw}, nil
}

func redactAccount(s string) string {
	u, _, _ := strings.Cut(s, ":")
	return u + ":…"
}

func (r *Remote) Info() report.Target {
	have, lacks := Capabilities(r)
	return report.Target{Name: r.addrs.C2S, Kind: "remote", Domain: r.domain,
		Description: "a live deployment at " + r.addrs.C2S, Capabilities: have, Lacks: lacks}
}

func (r *Remote) Start(context.Context) error { return nil }
func (r *Remote) Close(context.Context) error { return nil }
func (r *Remote) Domain() string              { return r.domain }
func (r *Remote) Addrs() Addrs                { return r.addrs }
func (r *Remote) LocalAddrs() bool {
	host, _, _ := strings.Cut(r.addrs.C2S, ":")
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback() || host == "localhost"
}
func (r *Remote) IBR() bool { return r.ibr }

func (r *Remote) Has(c spec.Capability) (bool, string) {
	switch c {
	case spec.CapNetwork:
		return true, ""
	case spec.CapAccounts:
		if len(r.accounts) > 0 || r.ibr {
			return true, ""
		}
		return false, "no --account given and in-band registration not allowed (--ibr)"
	case spec.CapEvidence, spec.CapLogs, spec.CapData:
		return false, "a remote deployment's logs and data directory cannot be read"
	case spec.CapClock, spec.CapPurge:
		return false, "a remote deployment's clock cannot be moved"
	}
	return false, "unknown capability"
}

func (r *Remote) SeenAddrs(_ context.Context, local netip.Addr) []netip.Addr {
	return []netip.Addr{local}
}

// NewAccount hands out the given accounts in turn, then (with --ibr)
// registers throwaway accounts.
func (r *Remote) NewAccount(ctx context.Context, hint string) (Account, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next >= len(r.accounts) && r.ibr {
		a := Account{User: throwawayPrefix + hint + "-" + randomHex(5), Password: "pw-" + randomHex(12), Created: true}
		return a, registerIBR(ctx, r.addrs.C2S, r.domain, a)
	}
	if r.next >= len(r.accounts) {
		return Account{}, fmt.Errorf("%w: %d --account given, all in use", ErrNoAccount, len(r.accounts))
	}
	a := r.accounts[r.next]
	r.next++
	return a, nil
}

// Release returns given accounts to the pool (a spec's cleanup).
func (r *Remote) Release(a Account) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.next {
		if r.accounts[i] == a {
			r.accounts = append(append(r.accounts[:i:i], r.accounts[i+1:]...), a)
			r.next--
			return
		}
	}
}

// CreateAccount registers a in-band when allowed (--ibr).
func (r *Remote) CreateAccount(ctx context.Context, a Account) error {
	if !r.ibr {
		return fmt.Errorf("%w: creating accounts on a remote needs --ibr", ErrUnsupported)
	}
	return registerIBR(ctx, r.addrs.C2S, r.domain, a)
}

func (r *Remote) DeleteAccount(ctx context.Context, a Account) error {
	if a.Created {
		return unregisterIBR(ctx, r.addrs.C2S, r.domain, a)
	}
	r.Release(a)
	return nil
}

func (r *Remote) Logs(context.Context) (*evidence.Corpus, error) {
	return nil, fmt.Errorf("%w: remote logs", ErrUnsupported)
}
func (r *Remote) Data(context.Context) (*evidence.Corpus, error) {
	return nil, fmt.Errorf("%w: remote data", ErrUnsupported)
}
func (r *Remote) StoreFormat() evidence.StoreFormat { return "" }
func (r *Remote) Advance(context.Context, time.Duration) error {
	return fmt.Errorf("%w: remote clock", ErrUnsupported)
}
func (r *Remote) Now() time.Time { return time.Now() }
