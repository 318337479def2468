package conformance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

// clientOpts are the shared client's options for this spec: its source
// address, TLS without certificate checks (test servers), the I/O timeout
// and the transcript.
func (e *Env) clientOpts(extra ...xmppclient.Option) []xmppclient.Option {
	opts := []xmppclient.Option{
		xmppclient.WithDomain(e.Target.Domain()),
		xmppclient.WithInsecureSkipVerify(),
		xmppclient.WithTLSVersions(tls.VersionTLS12, 0),
		xmppclient.WithTimeout(e.ioTimeout),
		xmppclient.WithTranscript(e.Transcript),
	}
	if e.local.IsValid() {
		opts = append(opts, xmppclient.WithLocalAddr(e.local))
	}
	return append(opts, extra...)
}

// Client opens an unauthenticated stream (STARTTLS done).
func (e *Env) Client(ctx context.Context, extra ...xmppclient.Option) (*xmppclient.Client, error) {
	c, err := xmppclient.Dial(ctx, e.Target.Addrs().C2S, e.clientOpts(extra...)...)
	if err != nil {
		return nil, err
	}
	e.clients = append(e.clients, c)
	return c, nil
}

// Session logs a in (SASL and bind) over a fresh stream.
func (e *Env) Session(ctx context.Context, a target.Account, extra ...xmppclient.Option) (*xmppclient.Client, error) {
	e.Transcript.AddSecret(a.Password)
	// SCRAM first; PLAIN (over TLS) only for a server offering nothing else.
	mechs := xmppclient.WithMechanisms(append(slices.Clone(xmppclient.DefaultMechanisms), "SCRAM-SHA-512", "PLAIN")...)
	c, err := e.Client(ctx, append([]xmppclient.Option{mechs}, extra...)...)
	if err != nil {
		return nil, err
	}
	if err := c.Login(ctx, a.User, a.Password); err != nil {
		return nil, fmt.Errorf("login %s: %w", a.User, err)
	}
	return c, nil
}

// Bare is the bare JID of a's account.
func (e *Env) Bare(a target.Account) string { return a.User + "@" + e.Target.Domain() }

// canCreateAccounts reports whether the spec may create accounts of its own
// (not only use accounts the user gave).
func (e *Env) canCreateAccounts() bool {
	ok, _ := e.Target.Has(spec.CapAccounts)
	return ok && (e.Target.Info().Kind != "remote" || e.Target.IBR())
}

// Register registers user by XEP-0077 on a fresh stream from the spec's
// address.
func (e *Env) Register(ctx context.Context, user, password string) error {
	e.Transcript.AddSecret(password)
	c, err := e.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.Register(ctx, user, password, nil)
}

// RegisterFilling registers user on a fresh stream, answering whatever
// the form requires (placeholder values for fields beyond username and
// password): for tests whose subject is not the form itself.
func (e *Env) RegisterFilling(ctx context.Context, user, password string) error {
	e.Transcript.AddSecret(password)
	c, err := e.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	rf, err := c.RegistrationForm(ctx)
	if err != nil {
		return err
	}
	placeholder := func(name string) string {
		if name == "email" {
			return "xmppcheck@example.invalid"
		}
		return "xmppcheck"
	}
	if rf.Form != nil {
		values := map[string]string{"username": user, "password": password}
		for _, f := range rf.FormFields {
			if _, ok := values[f.Var]; !ok && f.Required && f.Type != "hidden" && f.Type != "fixed" {
				values[f.Var] = placeholder(f.Var)
			}
		}
		return c.RegisterForm(ctx, values)
	}
	extra := map[string]string{}
	for _, f := range rf.Fields {
		if f != "username" && f != "password" {
			extra[f] = placeholder(f)
		}
	}
	return c.Register(ctx, user, password, extra)
}

// HTTPClient fetches upload URLs. Whatever host a URL names, it connects
// only to the target's HTTP address (ports published on 127.0.0.1), so no
// request leaves loopback and container port mappings are honoured.
func (e *Env) HTTPClient() (*http.Client, error) {
	addr := e.Target.Addrs().HTTP
	if addr == "" {
		return nil, notTestablef("the target has no HTTP (upload) address")
	}
	d := &net.Dialer{Timeout: e.ioTimeout}
	if e.local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: e.local.AsSlice()}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test certificates
		ResponseHeaderTimeout: e.ioTimeout,
		DisableKeepAlives:     true,
	}
	return &http.Client{Transport: tr, Timeout: 2 * e.ioTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, nil
}

// uploadService finds the XEP-0363 service by disco (XEP-0030 items of
// the server, then their info).
func uploadService(ctx context.Context, c *xmppclient.Client, domain string) (string, error) {
	info, err := c.DiscoInfo(ctx, "", "")
	if err == nil && info.HasFeature(ns.Upload) {
		return domain, nil
	}
	items, err := c.DiscoItems(ctx, "", "")
	if err != nil {
		return "", fmt.Errorf("disco items: %w", err)
	}
	for _, it := range items {
		info, err := c.DiscoInfo(ctx, it.JID, "")
		if err == nil && info.HasFeature(ns.Upload) {
			return it.JID, nil
		}
	}
	return "", notTestablef("the server offers no HTTP file upload service (XEP-0363 feature %s in disco)", ns.Upload)
}

// drain collects the stanzas c receives until a ping round trip completes:
// servers deliver what they hold (offline messages, presences) before they
// answer a later request on the same stream.
func drain(ctx context.Context, c *xmppclient.Client) ([]xmppclient.Stanza, error) {
	if _, err := c.Ping(ctx, ""); err != nil {
		return nil, err
	}
	var out []xmppclient.Stanza
	for {
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		s, err := c.Recv(rctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, xmppclient.ErrTimeout) {
				return out, nil
			}
			return out, err
		}
		out = append(out, s)
	}
}

func bodies(ss []xmppclient.Stanza) []string {
	var out []string
	for _, s := range ss {
		if s.Kind() == "message" && s.Body() != "" {
			out = append(out, s.Body())
		}
	}
	return out
}

func containsAny(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
