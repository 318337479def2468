// Package interop proves the reference server's federation (package s2s)
// against real servers: Prosody 0.12 and ejabberd 23.01 from Debian's
// packages, built from fixtures/targets and run in containers on a private
// Docker network. It holds tests only.
package interop
