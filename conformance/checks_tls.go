package conformance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/xmppcheck/xmppcheck/conformance/wire"
	"github.com/xmppcheck/xmppcheck/spec"
)

func init() {
	checks[spec.TLSC2SRequired] = checkTLSRequired
	checks[spec.TLSC2SMinVersion] = func(ctx context.Context, e *Env) error {
		return checkTLSVersions(ctx, e, []Port{C2S, C2STLS})
	}
	checks[spec.TLSS2SMinVersion] = func(ctx context.Context, e *Env) error {
		return checkTLSVersions(ctx, e, []Port{S2S})
	}
}

// handshakeOutcome classifies a TLS attempt.
type handshakeOutcome int

const (
	tlsUp      handshakeOutcome = iota
	tlsRefused                  // the server answered with a TLS alert or chose another version
	tlsDropped                  // connection closed or reset without a TLS answer
)

func classifyTLS(err error) handshakeOutcome {
	if err == nil {
		return tlsUp
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, wire.ErrNoResponse) {
		return tlsDropped
	}
	if strings.Contains(err.Error(), "tls:") {
		return tlsRefused
	}
	return tlsDropped
}

// tryTLS opens a stream on port p and negotiates TLS at exactly version v.
// A non-nil error means the attempt could not be made (before TLS).
func tryTLS(ctx context.Context, e *Env, p Port, v uint16) (handshakeOutcome, string, error) {
	cfg := wire.TLSConfig(e.Target.Domain(), v)
	if p == C2STLS {
		c, err := e.Dial(ctx, p, wire.WithDirectTLS(cfg))
		var te *wire.TLSError
		if errors.As(err, &te) {
			return classifyTLS(te.Err), te.Err.Error(), nil
		}
		if err != nil {
			return 0, "", err
		}
		c.Close()
		return tlsUp, "negotiated " + tls.VersionName(c.TLSState.Version), nil
	}
	c, err := e.Dial(ctx, p)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	err = c.StartTLS(ctx, cfg)
	var te *wire.TLSError
	switch {
	case err == nil:
		return tlsUp, "negotiated " + tls.VersionName(c.TLSState.Version), nil
	case errors.As(err, &te):
		return classifyTLS(te.Err), te.Err.Error(), nil
	default:
		return 0, "", err
	}
}

// checkTLSVersions: handshakes below the policy's floor fail, the floor and
// above work (RFC 7590 §3.1; DESIGN.md). Versions at or above the floor are
// tried first: they are the positive control that the port speaks TLS at
// all, so that a refusal below the floor means something.
func checkTLSVersions(ctx context.Context, e *Env, ports []Port) error {
	floor := e.Claim.Params.TLSVersion("min")
	versions := slices.Clone(spec.TLSVersions())
	slices.Reverse(versions) // newest first
	tested := 0
	for _, p := range ports {
		if e.addr(p) == "" {
			if p == C2STLS {
				e.Observe(fmt.Sprintf("%s", p), true, "the target has no direct TLS client port; STARTTLS only")
				continue
			}
			return notTestablef("the target has no %s listener", p)
		}
		tested++
		for _, v := range versions {
			name := fmt.Sprintf("%s handshake offering only TLS %s", p, spec.TLSVersionName(v))
			outcome, detail, err := tryTLS(ctx, e, p, v)
			if errors.Is(err, wire.ErrNoStartTLS) {
				e.Observe(name, false, "STARTTLS not offered: the port allows no TLS at all")
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			switch {
			case v >= floor && outcome == tlsUp:
				e.Observe(name, true, "accepted: %s", detail)
			case v >= floor && outcome == tlsRefused:
				e.Observe(name, false, "refused at or above the floor TLS %s: %s", spec.TLSVersionName(floor), detail)
			case v >= floor:
				return fmt.Errorf("%s: the server dropped the connection during the handshake (%s): cannot tell refusal from breakage", name, detail)
			case outcome == tlsUp:
				e.Observe(name, false, "accepted below the floor TLS %s: %s", spec.TLSVersionName(floor), detail)
			default:
				e.Observe(name, true, "refused: %s", detail)
			}
		}
	}
	if tested == 0 {
		return notTestablef("the target has no listener for this claim")
	}
	return nil
}

// checkTLSRequired: no authentication is possible without TLS (RFC 6120
// §5.3.1, RFC 7590). Before TLS the server must not offer SASL
// mechanisms and must refuse an authentication attempt with the test
// account's correct credentials; the same credentials then work after
// STARTTLS (the positive control that the refusal was about TLS).
func checkTLSRequired(ctx context.Context, e *Env) error {
	user, pw := "xmppcheck-nobody", UniqueName("not-a-password")
	real := false
	if ok, _ := e.Target.Has(spec.CapAccounts); ok {
		a, err := e.Account(ctx, "tlsreq")
		if err != nil {
			return err
		}
		user, pw, real = a.User, a.Password, true
	}
	c, err := e.Dial(ctx, C2S)
	if err != nil {
		return err
	}
	_, offered := c.Features.Child(wire.NSTLS, "starttls")
	e.Observe("STARTTLS offered on the client port", offered, "%v", map[bool]string{true: "offered", false: "not offered"}[offered])
	mechs := c.Mechanisms()
	e.Observe("SASL mechanisms before TLS", len(mechs) == 0, "%s", orNone(mechs))
	mechsPlain := slices.Clone(mechs)
	authErr := c.AuthPlain(ctx, user, pw)
	var sf *wire.SASLFailure
	switch {
	case authErr == nil:
		e.Observe("SASL PLAIN before TLS", false, "authentication SUCCEEDED without TLS")
	case errors.As(authErr, &sf):
		e.Observe("SASL PLAIN before TLS", true, "refused with <%s/>", sf.Condition)
	case errors.Is(authErr, wire.ErrStreamError), errors.Is(authErr, wire.ErrProtocol):
		e.Observe("SASL PLAIN before TLS", true, "refused: %v", authErr)
	default:
		return fmt.Errorf("plaintext authentication attempt: %w", authErr)
	}
	c.Close()
	for _, m := range mechsPlain {
		if strings.HasPrefix(m, "SCRAM-") {
			c, err := e.Dial(ctx, C2S)
			if err != nil {
				return err
			}
			err = c.AuthSCRAM(ctx, m, user, pw)
			e.Observe(m+" before TLS", err != nil, "%s", okOrErr(err, "authentication SUCCEEDED without TLS"))
			c.Close()
			break
		}
	}
	if !real {
		// Control without an account: over TLS the server does offer SASL,
		// so the refusal before TLS was about TLS.
		tc, err := e.Dial(ctx, C2S)
		if err != nil {
			return err
		}
		if err := tc.StartTLS(ctx, &tls.Config{ServerName: e.Target.Domain(), MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}); err != nil { //nolint:gosec // test certificates
			return fmt.Errorf("STARTTLS does not complete, so nothing shows authentication works at all: %w", err)
		}
		after := tc.Mechanisms()
		tc.Close()
		if len(after) == 0 {
			return fmt.Errorf("no SASL mechanism is offered even after TLS: nothing to compare with")
		}
		e.Observe("SASL mechanisms after STARTTLS (control)", true, "%s; no test account on this target, so a real login was not tried", orNone(after))
		return nil
	}
	a := e.accounts[0]
	lc, err := e.Login(ctx, a)
	if err != nil {
		return fmt.Errorf("the same credentials fail after STARTTLS, so the plaintext refusal proves nothing: %w", err)
	}
	lc.Close()
	e.Observe("the same credentials after STARTTLS (control)", true, "login succeeded over %s", tls.VersionName(lc.TLSState.Version))
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none offered"
	}
	return "offered: " + strings.Join(s, ", ")
}

func okOrErr(err error, ifNil string) string {
	if err == nil {
		return ifNil
	}
	return "refused: " + err.Error()
}
