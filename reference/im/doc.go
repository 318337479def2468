// Package im is the reference server's instant-messaging core: the session
// table and stanza routing of RFC 6120 §8 and §10, message delivery rules,
// roster, subscriptions and presence of RFC 6121, offline storage
// (XEP-0160) with delayed delivery stamps (XEP-0203), and the server-side
// handlers of service discovery (XEP-0030), vcard-temp (XEP-0054), ping
// (XEP-0199) and in-band registration (XEP-0077). It knows nothing of
// sockets: c2s sessions (and s2s, through host.Host) hand it parsed stanzas.
//
// No message archive (XEP-0313) exists and none is advertised; last activity
// (XEP-0012) is not implemented, so no login or logout time is kept.
package im
