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
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/wire"
	"github.com/xmppcheck/xmppcheck/internal/ns"
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

// handshakeOutcome is what a TLS attempt at one version proved, from the
// handshake alone (docs/compliant-outcomes.md).
type handshakeOutcome int

const (
	// tlsUp: the handshake completed at the version offered.
	tlsUp handshakeOutcome = iota
	// tlsRefused: the server answered the ClientHello with a TLS alert
	// (protocol_version, handshake_failure, …) or with a ServerHello of
	// another version: it spoke TLS and declined this version.
	tlsRefused
	// tlsClosed: the server closed or reset the TCP connection after the
	// ClientHello without sending a single byte of TLS. Below the floor
	// that is a refusal (nothing was negotiated); at the floor it proves
	// nothing works.
	tlsClosed
	// tlsBroken: anything else — no answer before the deadline, a
	// connection cut in the middle of the server's handshake messages, a
	// local error. Never a proof either way.
	tlsBroken
)

// classifyTLS names what a failed handshake proved.
func classifyTLS(te *wire.TLSError) handshakeOutcome {
	err := te.Err
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports an alert from the peer as a "remote error".
		return tlsRefused
	case strings.Contains(err.Error(), "tls: server selected unsupported protocol version"):
		return tlsRefused
	case errors.Is(err, wire.ErrNoResponse):
		return tlsBroken
	case te.ServerBytes == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return tlsClosed
	}
	return tlsBroken
}

// tlsAttempt is the result of one TLS attempt at one version.
type tlsAttempt struct {
	outcome handshakeOutcome
	detail  string
	// after is what the server did once the handshake had completed
	// (empty when the stream went on normally): a separate observation.
	after string
}

// tryTLS opens a stream on port p and negotiates TLS at exactly version v.
// A non-nil error means the attempt could not be made (before TLS).
func tryTLS(ctx context.Context, e *Env, p Port, v uint16) (tlsAttempt, error) {
	cfg := wire.TLSConfig(e.Target.Domain(), v)
	var err error
	var c *wire.Conn
	if p == C2STLS {
		c, err = e.Dial(ctx, p, wire.WithDirectTLS(cfg))
	} else {
		c, err = e.Dial(ctx, p)
		if err != nil {
			return tlsAttempt{}, err
		}
		err = c.StartTLS(ctx, cfg)
	}
	var te *wire.TLSError
	var ae *wire.AfterTLSError
	switch {
	case err == nil:
		return tlsAttempt{outcome: tlsUp, detail: "negotiated " + tls.VersionName(c.TLSState.Version)}, nil
	case errors.As(err, &ae):
		return tlsAttempt{outcome: tlsUp, detail: "negotiated " + tls.VersionName(ae.State.Version), after: ae.Err.Error()}, nil
	case errors.As(err, &te):
		return tlsAttempt{outcome: classifyTLS(te), detail: te.Err.Error()}, nil
	default:
		return tlsAttempt{}, err
	}
}

// checkTLSVersions: handshakes below the policy's floor fail, the floor and
// above work (RFC 7590 §3.1; docs/compliant-outcomes.md). The version is proved by the
// handshake alone: a handshake that completes below the floor is a
// failure whatever follows it, one refused with a TLS alert (or a
// ServerHello of another version) is a refusal, and so is a connection
// the server closes after the ClientHello without a byte of TLS — below
// the floor only. At the floor and above only a completed handshake
// counts; a close there proves that nothing works and ends in error. A
// timeout is never a proof. What the server says after a completed
// handshake (a stream error on the reopened stream, such as an s2s
// <not-authorized/> for a peer without a valid certificate) is recorded
// as a separate observation and does not decide the version. Versions at
// or above the floor are tried first: they are the positive control that
// the port speaks TLS at all, so that a refusal below the floor means
// something.
func checkTLSVersions(ctx context.Context, e *Env, ports []Port) error {
	floor := e.Claim.Params.TLSVersion("min")
	versions := slices.Clone(spec.TLSVersions())
	slices.Reverse(versions) // newest first
	tested := 0
	for _, p := range ports {
		if e.addr(p) == "" {
			if p == C2STLS {
				e.Observe(p.String(), true, "the target has no direct TLS client port; STARTTLS only")
				continue
			}
			return notTestablef("the target has no %s listener", p)
		}
		tested++
		for _, v := range versions {
			name := fmt.Sprintf("%s handshake offering only TLS %s", p, spec.TLSVersionName(v))
			at, err := tryTLS(ctx, e, p, v)
			if errors.Is(err, wire.ErrNoStartTLS) {
				e.Observe(name, false, "STARTTLS not offered: the port allows no TLS at all")
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fl := spec.TLSVersionName(floor)
			switch {
			case at.outcome == tlsUp && v >= floor:
				e.Observe(name, true, "accepted: %s (the handshake completed)", at.detail)
			case at.outcome == tlsUp:
				e.Observe(name, false, "accepted below the floor TLS %s: %s (the handshake completed)", fl, at.detail)
			case at.outcome == tlsRefused && v >= floor:
				e.Observe(name, false, "refused at or above the floor TLS %s: %s", fl, at.detail)
			case at.outcome == tlsRefused:
				e.Observe(name, true, "refused by the server's TLS: %s", at.detail)
			case at.outcome == tlsClosed && v < floor:
				e.Observe(name, true, "refused: the server closed the connection after the ClientHello without sending any TLS (%s)", at.detail)
			case at.outcome == tlsClosed:
				return fmt.Errorf("%s: the server closed the connection after the ClientHello without any TLS (%s): could not prove the floor TLS %s works", name, at.detail, fl)
			default:
				return fmt.Errorf("%s: the handshake neither completed nor was refused by the server (%s): nothing is proved about TLS %s", name, at.detail, spec.TLSVersionName(v))
			}
			if at.after != "" {
				e.Observe(name+": after the handshake", true, "separate from the TLS version, not judged by this claim: %s", at.after)
			}
		}
	}
	if tested == 0 {
		return notTestablef("the target has no listener for this claim")
	}
	return nil
}

// preTLSAuth is what the server did with an authentication attempt made
// before TLS.
type preTLSAuth int

const (
	authAccepted     preTLSAuth = iota // <success/>
	authEncryption                     // <failure><encryption-required/></failure> (RFC 6120 §6.5.4)
	authSASLFailure                    // another SASL <failure/>
	authStreamError                    // a stream error ended the stream
	authStreamClosed                   // the server closed the stream or the connection
	authSilent                         // no answer within the bounded wait
	authOther                          // anything else: not understood
)

// classifyPreTLSAuth names the server's answer to a pre-TLS <auth/>.
func classifyPreTLSAuth(err error) (preTLSAuth, string) {
	var sf *wire.SASLFailure
	switch {
	case err == nil:
		return authAccepted, "authentication SUCCEEDED without TLS"
	case errors.As(err, &sf) && sf.Condition == "encryption-required":
		return authEncryption, "refused with <failure><encryption-required/></failure>"
	case errors.As(err, &sf):
		return authSASLFailure, fmt.Sprintf("refused with <failure><%s/></failure>", sf.Condition)
	case errors.Is(err, wire.ErrStreamError):
		return authStreamError, fmt.Sprintf("the server ended the stream with a stream error (%v)", err)
	case errors.Is(err, wire.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		return authStreamClosed, fmt.Sprintf("the server closed the stream without answering (%v)", err)
	case errors.Is(err, wire.ErrNoResponse):
		return authSilent, fmt.Sprintf("no answer at all (%v)", err)
	}
	return authOther, err.Error()
}

// checkTLSRequired: no authentication is possible without TLS (RFC 6120
// §5.3.1, §6.5.4, RFC 7590). Before TLS the server must offer no SASL
// mechanism, and an <auth/> sent anyway must not succeed. What proves the
// refusal (docs/compliant-outcomes.md):
//
//   - <failure><encryption-required/></failure>;
//   - a stream error, or the server closing the stream or the connection;
//   - silence: no answer within the bounded wait (the I/O timeout) — the
//     server ignored the <auth/> and accepted nothing;
//   - with the test account's correct password, any SASL <failure/>.
//
// With the correct password the refusal is about TLS only if the same
// credentials then work after STARTTLS (the control). Without a test
// account made-up credentials are sent, and a <failure/> other than
// encryption-required (not-authorized, say) would also be the answer to a
// wrong password over TLS: it proves nothing, so the claim is then
// not-testable unless something was already proved wrong. Anything else
// (an unexpected element) is an error.
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
	_, offered := c.Features.Child(ns.TLS, "starttls")
	e.Observe("STARTTLS offered on the client port", offered, "%v", map[bool]string{true: "offered", false: "not offered"}[offered])
	mechs := c.Mechanisms()
	e.Observe("SASL mechanisms before TLS", len(mechs) == 0, "%s", orNone(mechs))
	mechsPlain := slices.Clone(mechs)
	// The bounded wait for an answer to a pre-TLS <auth/>: the I/O
	// timeout, but at most a third of what is left of the claim's budget,
	// so that the control after STARTTLS still has time.
	wait := e.ioTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/3)
	}
	attempt := func(auth func(context.Context) error) error {
		actx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return auth(actx)
	}
	var unproved []string
	judge := func(what string, err error) error {
		kind, seen := classifyPreTLSAuth(err)
		switch {
		case kind == authAccepted:
			e.Observe(what, false, "%s", seen)
		case kind == authEncryption, kind == authStreamError, kind == authStreamClosed:
			e.Observe(what, true, "%s", seen)
		case kind == authSilent:
			e.Observe(what, true, "%s: the server ignored the <auth/>; after a bounded wait of %s no <success/> had come, so nothing was accepted", seen, wait.Round(time.Millisecond))
		case kind == authSASLFailure && real:
			e.Observe(what, true, "%s to the test account's correct password", seen)
		case kind == authSASLFailure:
			e.Observe(what+" (made-up credentials)", true, "%s: not a proof, the same answer a wrong password gets over TLS", seen)
			unproved = append(unproved, what+": "+seen)
		default:
			return fmt.Errorf("%s: neither accepted nor refused: %s", what, seen)
		}
		return nil
	}
	if err := judge("SASL PLAIN before TLS", attempt(func(ctx context.Context) error { return c.AuthPlain(ctx, user, pw) })); err != nil {
		return err
	}
	c.Close()
	for _, m := range mechsPlain {
		if strings.HasPrefix(m, "SCRAM-") {
			c, err := e.Dial(ctx, C2S)
			if err != nil {
				return err
			}
			err = judge(m+" before TLS", attempt(func(ctx context.Context) error { return c.AuthSCRAM(ctx, m, user, pw) }))
			c.Close()
			if err != nil {
				return err
			}
			break
		}
	}
	if !real {
		// Control without an account: over TLS the server does offer SASL,
		// so what it refused before TLS is available with TLS.
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
		if len(unproved) > 0 && !e.failed() {
			return notTestablef("without a test account only made-up credentials could be sent before TLS, and the server's answer proves no refusal (%s); give an account (--account) to test the claim", strings.Join(unproved, "; "))
		}
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
