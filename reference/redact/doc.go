// Package redact is the reference server's one logging path for errors: it
// strips the network addresses (and ports) that Go's network errors carry,
// so that no client address reaches a log (privacy.no-client-ip) except the
// failed-login lines that policy allows, which carry the address as a plain
// string attribute on purpose.
//
// The server wraps its slog handler with Handler: every attribute whose value
// is an error is rendered by Err, whatever code logs it. net/http's
// ErrorLog goes through Writer.
package redact
