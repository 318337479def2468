// Package hostilexmpp is a hostile XMPP server for the tests that bound a
// client's memory (RFC 6120 streams): it answers a connection with a stream
// header and then one token that never ends — whitespace, a text run,
// children, a body, an attribute value, nesting — up to a byte budget, so a
// client without a read bound grows until the budget is spent and a bounded
// one gives up early. It listens on loopback only.
package hostilexmpp
