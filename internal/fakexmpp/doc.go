// Package fakexmpp is a minimal in-process XMPP server (RFC 6120, RFC 6121
// and the client-facing parts of XEP-0077, XEP-0030, XEP-0054, XEP-0012,
// XEP-0199 and XEP-0363) for the tests of the XMPP client and the load
// generator.
//
// It is not a server to deploy and not the reference server: it keeps
// everything in memory, stores passwords in clear (PLAIN is offered after
// TLS), and implements only what those tests exercise — STARTTLS and direct
// TLS with a self-signed certificate, SCRAM-SHA-1/256 (with
// github.com/xdg-go/scram), resource binding, message routing with offline
// storage, presence subscriptions and broadcast, rosters with pushes,
// vCards, in-band registration (legacy fields or a data form), password
// change and account removal, disco, ping, last activity, upload slots, and
// injectable SASL failures. It listens on 127.0.0.1 only; Start runs one
// for the length of a test.
//
// It is one of two fakes. This one is a working server with many
// features, for tests that need one. Its faults are the two the client's
// own negative tests need (WithoutTLSRequirement, WithMinTLSVersion) and,
// in faults.go, the answers the conformance suite's protocol checks must
// tell apart, which need a working server around them: a lockout after
// failed logins (a SASL failure, a closed connection, a stream error, or
// silence), a registration limit refusing with a given condition, and IQs
// of a namespace left unanswered or answered with a given error
// (WithLockout, WithRegistrationLimit, WithIQStall, WithIQError). conformance/internal/fakeserver is the other: just
// enough XMPP for the suite's probes, with the faults the suite must
// detect (a TLS ceiling, insecure cipher suites, PLAIN before TLS, an
// upload service over HTTPS with guessable ids or a listing) and peers
// that are not XMPP servers at all (silent, garbage, TLS dropped
// mid-handshake), so that each verdict is proven both ways. Merging them
// would put the suite's fault switches and an HTTPS server into the fake
// every client and load test runs against.
package fakexmpp
