// Package syncbuf is a bytes buffer safe for concurrent use: the sink for
// logs and transcripts that tests read while servers and clients are still
// writing to them from other goroutines. It implements no protocol.
package syncbuf
