// Package testcert makes X.509 certificates (RFC 5280) for tests: a test
// CA, certificates it issues, and self-signed certificates, all ECDSA P-256
// and valid from an hour ago for a day.
//
// The reference server's own self-signed certificate (reference/cert.go)
// is not made here: it is written to the data directory, lives ten years and
// names the loopback addresses, which no test certificate needs.
package testcert
