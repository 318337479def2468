// Package logburst sums up repeated log events: the first event of a kind
// (a message and a key, such as a failed login and the address it came
// from) is logged at once, the repeats within an interval are counted and
// logged as one line when the interval ends. A flood of connections
// without an account then costs a few lines per address and interval, not
// one per attempt, while the first line still appears at once for those
// who watch the log (the conformance suite's positive controls).
package logburst
