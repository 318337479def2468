// Package xmppclient is the XMPP client (RFC 6120, RFC 6121) that the
// conformance suite, the load generator and the reference server's tests
// drive, with the client side of XEP-0077 (in-band registration), XEP-0030
// (disco), XEP-0054 (vcard-temp), XEP-0363 (HTTP upload slots), XEP-0012
// (last activity), XEP-0313 (archive queries), XEP-0199 (ping) and
// XEP-0368 (direct TLS).
//
// # Connecting
//
//	c, err := xmppclient.Dial(ctx, "127.0.0.1:5222",
//		xmppclient.WithDomain("localhost"),
//		xmppclient.WithRootCAs(pool),                          // or WithInsecureSkipVerify()
//		xmppclient.WithTLSVersions(tls.VersionTLS12, 0),       // explicit TLS floor/ceiling
//		xmppclient.WithLocalAddr(netip.MustParseAddr("127.0.0.9")), // source address
//		xmppclient.WithTranscript(w))                          // redacted XML both ways
//	// c.Features(): STARTTLS, mechanisms, register, … as the server announced them
//	err = c.Register(ctx, "alice", "pw", nil)  // optional, on the unauthenticated stream
//	err = c.Login(ctx, "alice", "pw")           // Authenticate (SASL) + Bind
//	defer c.Close(ctx)
//
// Connect(ctx, addr, user, password, opts...) does Dial and Login. The TLS
// mode is StartTLS (default, RFC 6120 §5), DirectTLS (XEP-0368, ALPN
// "xmpp-client") or NoTLS (to test that a server refuses plaintext).
// Timings() gives the duration of each step (connect, TLS, stream, auth,
// bind).
//
// # Authentication and its errors
//
// SASL mechanisms: SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 and their -PLUS
// variants (tls-exporter on TLS 1.3, tls-unique below), and PLAIN when asked
// for with WithMechanisms. Default: SCRAM-SHA-256 then SCRAM-SHA-1. The
// server's SCRAM signature is verified (ErrServerSignature otherwise).
//
// A <failure/> is a *SASLError with the condition and the server's text;
// conditions are SASLCondition values usable with errors.Is:
//
//	errors.Is(err, xmppclient.SASLNotAuthorized)        // wrong credentials
//	errors.Is(err, xmppclient.SASLTemporaryAuthFailure) // e.g. brute-force lockout
//	var se *xmppclient.SASLError; errors.As(err, &se); se.Text
//
// After a SASL failure the stream stays open and Authenticate can be called
// again. A <stream:error/> is a *StreamError (errors.Is with a
// StreamCondition such as StreamPolicyViolation; it is also ErrClosed). Other
// sentinels: ErrTimeout, ErrClosed, ErrNoMechanism, ErrNoStartTLS,
// ErrTLSRefused, ErrState, ErrProtocol. TLS handshake failures wrap the
// crypto/tls error.
//
// # Stanzas
//
// Send writes raw XML (use Escape for values); SendMessage, SendPresence,
// Subscribe and ApproveSubscription build common stanzas. IQ sends a
// request and waits for the response with its id; an error response is a
// *StanzaError that unwraps to mellium's stanza.Error, so
// errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) works.
// Recv and RecvMatch return received stanzas (messages, presences, roster
// pushes) as Stanza values holding the raw XML and the decoded tokens
// (Stanza.Decode, Stanza.Body, Stanza.Err). A Recv that times out leaves a
// bound session usable. Unread stanzas wait in a queue (at most 100000; the
// oldest are dropped beyond) where Recv takes the first in constant time
// and a waiting RecvMatch tests each arriving stanza once, so thousands of
// unread stanzas cost no more per stanza than a few.
//
// Typed helpers: RegistrationForm, Register, RegisterForm, ChangePassword,
// Unregister (XEP-0077); DiscoInfo, DiscoItems (XEP-0030); GetVCard,
// SetVCard (XEP-0054); Roster, SetRosterItem, RemoveRosterItem (RFC 6121);
// RequestUploadSlot (XEP-0363); LastActivity (XEP-0012); QueryArchive
// (XEP-0313); Ping (XEP-0199).
//
// # Deadlines and concurrency
//
// Every read and write has a deadline: WithTimeout (default 10 s) bounds each
// network operation and each request/response round trip, or the context's
// deadline if sooner. Before the session is bound, reads happen in the
// caller's goroutine and a timeout is fatal to the connection; once bound,
// one background reader (idle limit WithIdleTimeout) routes iq responses,
// answers pings and roster pushes, and queues everything else for Recv. A
// Client is safe for concurrent use.
//
// Hijack hands the raw connection to the caller after Bind (before the
// background reader starts): the load generator runs its hot path on it
// with its own codec.
//
// # Transcript format
//
// With WithTranscript every element sent or received is one line:
//
//	2025-01-02T15:04:05.000000Z #7 C: <iq type='set' id='c7-3'>…</iq>
//	2025-01-02T15:04:05.001000Z #7 S: <iq type='result' id='c7-3'/>
//
// (time, connection id, C client→server or S server→client, the XML with
// newlines escaped). SASL payloads (<auth/>, <challenge/>, <response/>,
// <success/>), <password/> contents, password data-form fields and every
// password the client was given (in plain and XML-escaped form) are
// replaced by "[redacted]" (see Redact).
//
// # Implementation notes
//
// The client drives the stream with encoding/xml itself rather than through
// mellium.im/xmpp's Session: mellium hides the SASL failure condition and
// text in an internal type (the conformance suite must tell not-authorized
// from temporary-auth-failure and read the server's text), has no
// per-operation deadlines, and its Serve loop cannot hand the connection to
// the load generator's hot path. It uses mellium's stanza (error conditions),
// form (XEP-0004 data forms) packages, and github.com/xdg-go/scram for SCRAM,
// which caches derived keys across logins (SCRAMCache) where mellium.im/sasl
// recomputes PBKDF2 every time.
package xmppclient
