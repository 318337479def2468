package conformance

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/conformance/wire"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

// verdictError ends a check with a verdict other than pass or error.
type verdictError struct {
	verdict report.Verdict
	reason  string
}

func (e *verdictError) Error() string { return string(e.verdict) + ": " + e.reason }

// notTestablef ends a check with the verdict not-testable.
func notTestablef(format string, args ...any) error {
	return &verdictError{report.NotTestable, fmt.Sprintf(format, args...)}
}

// Env is the fresh environment of one spec: the target, the claim and its
// parameters, the spec's own client address, the accounts it created
// (deleted at cleanup), the observations it made and the transcript.
type Env struct {
	Target     target.Target
	Policy     *spec.Policy
	Claim      spec.Claim
	Kind       spec.Kind
	Transcript *wire.Transcript

	ioTimeout time.Duration
	local     netip.Addr
	obs       []report.Evidence
	blind     []string // parts of the claim not examined ("part: why")
	accounts  []target.Account
	conns     []*wire.Conn
	clients   []*xmppclient.Client
}

func newEnv(t target.Target, pol *spec.Policy, c spec.Claim, ioTimeout time.Duration) *Env {
	e := &Env{Target: t, Policy: pol, Claim: c, Kind: c.Kind(), Transcript: wire.NewTranscript(0), ioTimeout: ioTimeout}
	if t.LocalAddrs() {
		e.local = randomLoopback()
	}
	return e
}

// randomLoopback returns a distinctive address in 127.16.0.0–127.254.255.254,
// so every spec's client address is its own and cannot be confused with
// 127.0.0.1 or with bytes that happen to look like it.
func randomLoopback() netip.Addr {
	var b [3]byte
	rand.Read(b[:])
	return netip.AddrFrom4([4]byte{127, 16 + b[0]%239, b[1], 1 + b[2]%254})
}

// LocalAddr is the spec's client address (invalid when the target is not
// on loopback).
func (e *Env) LocalAddr() netip.Addr { return e.local }

// Observe records an observation; ok says whether it is what a compliant
// server shows. It returns ok.
func (e *Env) Observe(what string, ok bool, format string, args ...any) bool {
	e.obs = append(e.obs, report.Evidence{What: what, Observed: fmt.Sprintf(format, args...), OK: ok})
	return ok
}

// failed reports whether an observation so far is not what a compliant
// server shows.
func (e *Env) failed() bool {
	for _, o := range e.obs {
		if !o.OK {
			return true
		}
	}
	return false
}

// ObserveHits records an evidence scan: ok when there are no hits.
func (e *Env) ObserveHits(what string, hits []evidence.Hit, clean string) bool {
	if len(hits) == 0 {
		return e.Observe(what, true, "%s", clean)
	}
	ev := report.Evidence{What: what, OK: false, Observed: fmt.Sprintf("%d occurrence(s), first in %s line %d (%s form)", len(hits), hits[0].File, hits[0].Line, hits[0].Form)}
	for i, h := range hits {
		if i == 20 {
			break
		}
		ev.Hits = append(ev.Hits, report.Hit{File: h.File, Line: h.Line, Offset: h.Offset, Form: h.Form, Context: h.Context})
	}
	e.obs = append(e.obs, ev)
	return false
}

// Blind records that a part of the claim could not be examined (a channel
// the target lacks, a positive control not found) and lets the check go
// on with the parts it can examine. The verdict is then not-testable
// naming the part, unless a violation was observed (fail beats
// not-testable; docs/CLAIMS.md, "Verdicts").
func (e *Env) Blind(part, format string, args ...any) {
	why := fmt.Sprintf(format, args...)
	e.blind = append(e.blind, part+": "+why)
	e.obs = append(e.obs, report.Evidence{What: part, Observed: "NOT EXAMINED: " + why, OK: true})
}

// channel reports whether the target declares evidence channel c; when it
// does not, the part is recorded as not examined (Blind).
func (e *Env) channel(c spec.Capability, part string) bool {
	if ok, why := e.Target.Has(c); !ok {
		e.Blind(part, "the target lacks the %s channel (%s)", c, why)
		return false
	}
	return true
}

// Need ends the check as not testable when the target lacks c.
func (e *Env) Need(c spec.Capability) error {
	if ok, why := e.Target.Has(c); !ok {
		return notTestablef("the target lacks the %s capability: %s", c, why)
	}
	return nil
}

// Account creates a test account for this spec (deleted at cleanup).
func (e *Env) Account(ctx context.Context, hint string) (target.Account, error) {
	if err := e.Need(spec.CapAccounts); err != nil {
		return target.Account{}, err
	}
	a, err := e.Target.NewAccount(ctx, hint)
	if errors.Is(err, target.ErrNoAccount) {
		return a, notTestablef("%v", err)
	}
	if err != nil {
		return a, fmt.Errorf("create test account: %w", err)
	}
	e.Transcript.AddSecret(a.Password)
	e.accounts = append(e.accounts, a)
	if a.Created {
		e.Transcript.Notef("test account %s@%s", a.User, e.Target.Domain())
	} else { // issue 12: say what was done with a supplied account
		e.Transcript.Notef("supplied account %s@%s: logged in and used, never removed or changed by xmppcheck", a.User, e.Target.Domain())
	}
	return a, nil
}

// Accounts creates one test account per hint (Account), in order.
func (e *Env) Accounts(ctx context.Context, hints ...string) ([]target.Account, error) {
	out := make([]target.Account, 0, len(hints))
	for _, h := range hints {
		a, err := e.Account(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// forget drops an account from cleanup (it was deleted by the test).
func (e *Env) forget(a target.Account) {
	e.accounts = slices.DeleteFunc(e.accounts, func(x target.Account) bool { return x == a })
}

// UniqueName returns a fresh, distinctive name with the given prefix
// (lower case, safe as an XMPP localpart).
func UniqueName(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Port names a listener of the target.
type Port int

// Ports.
const (
	C2S Port = iota
	C2STLS
	S2S
)

func (p Port) String() string {
	return [...]string{"c2s (STARTTLS)", "c2s (direct TLS)", "s2s"}[p]
}

func (e *Env) addr(p Port) string {
	a := e.Target.Addrs()
	switch p {
	case C2STLS:
		return a.C2STLS
	case S2S:
		return a.S2S
	}
	return a.C2S
}

// Dial opens a stream to port p from the spec's client address.
func (e *Env) Dial(ctx context.Context, p Port, opts ...wire.Option) (*wire.Conn, error) {
	addr := e.addr(p)
	if addr == "" {
		return nil, notTestablef("the target has no %s listener", p)
	}
	base := []wire.Option{wire.WithTranscript(e.Transcript), wire.WithTimeout(e.ioTimeout)}
	if e.local.IsValid() {
		base = append(base, wire.WithLocalAddr(e.local))
	}
	if p == S2S {
		base = append(base, wire.WithServerStream("xmppcheck.invalid"))
	}
	c, err := wire.Dial(ctx, addr, e.Target.Domain(), append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	e.conns = append(e.conns, c)
	return c, nil
}

// Login opens an authenticated, bound client session: STARTTLS (TLS 1.2 or
// later), SCRAM-SHA-1 when offered (else the strongest SCRAM, else PLAIN).
func (e *Env) Login(ctx context.Context, a target.Account) (*wire.Conn, error) {
	c, err := e.Dial(ctx, C2S)
	if err != nil {
		return nil, err
	}
	if err := c.StartTLS(ctx, &tls.Config{ServerName: e.Target.Domain(), MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}); err != nil { //nolint:gosec // test certificates
		return nil, fmt.Errorf("login %s: %w", a.User, err)
	}
	if err := authenticate(ctx, c, a); err != nil {
		return nil, fmt.Errorf("login %s: %w", a.User, err)
	}
	if _, err := c.Bind(ctx, UniqueName("xmppcheck")); err != nil {
		return nil, fmt.Errorf("login %s: %w", a.User, err)
	}
	return c, nil
}

func authenticate(ctx context.Context, c *wire.Conn, a target.Account) error {
	mechs := c.Mechanisms()
	for _, m := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		if slices.Contains(mechs, m) {
			return c.AuthSCRAM(ctx, m, a.User, a.Password)
		}
	}
	if slices.Contains(mechs, "PLAIN") {
		return c.AuthPlain(ctx, a.User, a.Password)
	}
	return fmt.Errorf("no usable SASL mechanism offered (%s)", strings.Join(mechs, ", "))
}

// close ends every connection and deletes the accounts the spec created.
func (e *Env) close(ctx context.Context) error {
	for _, c := range e.conns {
		c.Close()
	}
	for _, c := range e.clients {
		c.Close(ctx)
	}
	var errs []error
	for _, a := range e.accounts {
		if err := e.Target.DeleteAccount(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("delete test account %s: %w", a.User, err))
		}
	}
	return errors.Join(errs...)
}

// result turns what the check returned into a verdict: any observed
// violation is a fail, whatever else could not be examined or finished;
// else an error ends in error; else any part not examined makes the claim
// not-testable, naming the parts; else pass (docs/CLAIMS.md, "Verdicts").
func (e *Env) result(err error, ctxErr error) (report.Verdict, string) {
	var bad []string
	for _, o := range e.obs {
		if !o.OK {
			bad = append(bad, o.What+": "+o.Observed)
		}
	}
	var ve *verdictError
	isVerdict := errors.As(err, &ve)
	switch {
	case isVerdict && ve.verdict == report.Fail:
		return report.Fail, strings.Join(append(bad, ve.reason), "; ")
	case len(bad) > 0:
		reason := strings.Join(bad, "; ")
		if err != nil {
			reason += "; (the check then stopped: " + err.Error() + ")"
		}
		return report.Fail, reason
	case isVerdict:
		return ve.verdict, strings.Join(append([]string{ve.reason}, e.blind...), "; ")
	case err != nil && ctxErr != nil:
		return report.Error, fmt.Sprintf("did not finish in time: %v", err)
	case err != nil:
		return report.Error, err.Error()
	case len(e.blind) > 0:
		return report.NotTestable, "not examined: " + strings.Join(e.blind, "; ")
	case len(e.obs) == 0:
		return report.Error, "the check recorded no observation, so nothing supports a pass"
	}
	return report.Pass, ""
}
