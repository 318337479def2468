// Package reference is xmppcheck's reference XMPP server: a small, correct
// and fast server configured from a privacy policy file (package spec) that
// keeps every promise of the claim catalogue (docs/CLAIMS.md). It
// implements c2s with
// STARTTLS required and direct TLS (RFC 6120, RFC 7590, XEP-0368) above the
// policy's TLS floor, SASL SCRAM-SHA-1 and SCRAM-SHA-256 with stored keys
// only (RFC 5802, RFC 7677), roster, subscriptions and presence (RFC 6121),
// 1:1 messages with offline storage purged at the policy's age (XEP-0160),
// vcard-temp (XEP-0054), service discovery (XEP-0030), ping (XEP-0199) and
// in-band registration with rate limits and account removal (XEP-0077). It
// keeps no message archive (no XEP-0313) and no connection times (no
// XEP-0012).
//
// Everything it stores is sealed with AES-256-GCM under a key kept outside
// the data directory (package store); its logs carry no client address
// except on failed logins; its clock is injectable and a test clock can be
// moved forward through Server.TestClock or the admin control socket.
//
// s2s federation and HTTP File Upload are components (packages
// reference/s2s and reference/upload) that plug in through package host.
package reference
