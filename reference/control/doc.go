// Package control is the reference server's local administration channel:
// a Unix socket in the data directory (mode 0600) over which `xmppcheck
// admin` manages accounts, dumps the store and, when the server runs with
// the test clock, moves that clock forward, while the server holds the
// store's lock. Every request proves knowledge of the at-rest key (HMAC of a
// fresh nonce with a key derived from it), so filesystem access to the
// socket alone is not enough. The protocol is one JSON line each way:
//
//	server → {"nonce": "<hex>"}
//	client → {"mac": "<hex HMAC-SHA-256(adminKey, nonce)>", "op": "...", ...}
//	server → {"ok": true, ...} or {"error": "..."}
//
// It is not reachable from the network.
package control
