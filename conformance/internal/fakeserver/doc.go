// Package fakeserver provides tiny in-process XMPP servers (just enough
// RFC 6120 for the suite's probes) on loopback for the conformance suite's
// own tests: servers with the faults the suite must detect — a TLS floor
// or ceiling set per test (down to TLS 1.0 with the insecure cipher
// suites), SASL PLAIN before TLS, an XEP-0363 upload service over HTTPS
// with guessable slot ids or a directory listing — so that every verdict
// is proven both ways; hostile servers that accept TCP and never answer,
// send garbage, or drop the connection in the middle of the TLS
// handshake; and servers answering in each of the ways a check must tell
// apart: a pre-TLS <auth/> ignored, refused with not-authorized, with a
// stream error or a reset; a ClientHello below the floor answered with an
// alert, a closed connection or silence; an s2s stream refused with a
// stream error after a completed handshake. The same server speaks
// jabber:client or jabber:server, whichever the probe's stream header
// declares, so it also stands in for an s2s port.
//
// It is not internal/fakexmpp, a working server with the breadth of
// client features (SCRAM, rosters, routing, registration) that the XMPP
// client's and the load generator's tests need; the suite's tests use
// that one where a check needs those features (see fakexmpp's package
// documentation for why the two are kept apart).
package fakeserver
