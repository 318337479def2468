// Package ratelimit holds the reference server's per-address limits, kept in
// memory only (never written to disk or logs): sliding windows of events on
// the server's clock (failed logins for auth.brute-force-protection,
// registrations for registration.rate-limited) and a cap on concurrent
// connections per address.
package ratelimit
