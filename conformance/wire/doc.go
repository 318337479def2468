// Package wire is the conformance suite's low-level XMPP probe: it opens
// client and server streams (RFC 6120 §4), negotiates STARTTLS (§5) or
// direct TLS (XEP-0368) at an exact TLS version, authenticates with SASL
// PLAIN or SCRAM (RFC 6120 §6, RFC 5802), binds a resource (§7) and
// exchanges stanzas — including the steps a well-behaved client refuses,
// such as offering credentials before TLS or TLS 1.0 — while recording a
// transcript with passwords and SASL payloads redacted.
//
// Well-behaved sessions belong to internal/xmppclient; this package exists
// because a conformance probe must be able to misbehave on purpose and to
// observe exactly what the server answered.
package wire
