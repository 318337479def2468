// Package store is the reference server's embedded store: one bbolt file in
// the data directory in which every value is sealed with AES-256-GCM under a
// key kept outside the data directory, and every key that would name a user
// or contact is a keyed hash (HMAC-SHA-256), so that the file holds no
// plaintext (the storage.encrypted-at-rest claim).
//
// It holds accounts as SCRAM stored keys only (RFC 5802 §3: salt, iteration
// count, StoredKey, ServerKey per hash; never the password nor
// SaltedPassword), rosters (RFC 6121 §2), vCards (XEP-0054) and offline
// messages (XEP-0160), and offers extensions (uploads) sealed buckets of
// their own. Commits are fsynced (bbolt's default), deletes remove the
// records, and Compact rewrites the file so that freed pages keep no old
// ciphertext either.
package store
