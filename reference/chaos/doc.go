// Package chaos is the reference server's chaos test suite (issue 10): the
// server runs in a child process (the test binary itself) with a low
// open-file limit, and the tests exhaust its descriptors through each
// listener, flood it per address and from many addresses, hold slowloris
// connections on every port, kill it with SIGKILL during offline writes and
// during compaction, fill its disk (a small tmpfs) and damage its store.
// Each asserts that the server keeps serving a legitimate client (or
// refuses to start with a clear message) and loses no acknowledged
// message. Every test is bounded: hundreds of connections, seconds each.
//
// The package holds tests only; the figures they log (connections held
// off, time to recover) are written up in BENCHMARKS.md (RELIABILITY).
package chaos
