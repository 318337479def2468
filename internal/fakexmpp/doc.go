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
// injectable SASL failures. It listens on 127.0.0.1 only.
package fakexmpp
