// Package s2s implements server-to-server federation for the reference
// server: RFC 6120 streams between servers with mandatory STARTTLS (§5) at
// the policy's tls.s2s-min-version floor in both directions, authenticated
// by XEP-0220 Server Dialback or, when certificates verify, SASL EXTERNAL
// (RFC 6120 §6, XEP-0178).
//
// Outbound connections are found through a static host map (tests, and
// operators who pin peers) or DNS SRV _xmpp-server._tcp with the A/AAAA
// fallback of RFC 6120 §3.2. Stanzas sent while a connection is being set up
// wait in a per-domain queue and are written once, in order, when the
// connection is authenticated; if it cannot be, they bounce to their senders
// with remote-server-not-found (or remote-server-timeout), RFC 6120 §8.3.3,
// within the configured setup timeout.
//
// Each (local domain, remote domain) pair has its own outbound stream, so
// the server's subdomain services (upload.DOMAIN) authenticate as
// themselves. Inbound streams are read with the server's XML reader
// (package wire); a stanza is delivered only if its 'from' is a domain the
// stream authenticated and its 'to' is served here. Inbound streams,
// outstanding verifications and unauthenticated silence are bounded.
//
// The package does not know users or sessions: inbound stanzas go to a
// Deliver function the server provides, and bounces are delivered the same
// way. Component adapts it to the reference server (host.Remote and
// host.Host.DeliverRemote).
package s2s
