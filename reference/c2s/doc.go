// Package c2s is the reference server's client-to-server listener: stream
// negotiation of RFC 6120 (§4 streams, §5 STARTTLS required before anything
// else, §6 SASL SCRAM, §7 resource binding), direct TLS (XEP-0368), the
// in-band registration stream feature (XEP-0077 §3.1), stream errors, and
// the limits that protect the server (maximum stanza size, unauthenticated
// timeout, per-address connection cap, brute-force protection of logins).
//
// Stanzas of bound sessions go to package im. The client's network address
// is held in memory for the limits and is written to the log only on a
// failed login (privacy.no-client-ip, auth.brute-force-protection).
package c2s
