// Package scramauth is the reference server's SASL SCRAM (RFC 5802,
// RFC 7677) mechanism: SCRAM-SHA-1 and SCRAM-SHA-256, with the -PLUS
// variants bound to the TLS channel with tls-exporter (RFC 9266) where the
// connection allows it. It derives the values stored per account (salt,
// iteration count, StoredKey, ServerKey — never the password nor
// SaltedPassword) and runs the server side of a conversation with
// github.com/xdg-go/scram. Unknown users get a conversation indistinguishable
// from a wrong password (RFC 5802 §9 advises against revealing which
// accounts exist).
package scramauth
