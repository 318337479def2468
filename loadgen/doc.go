// Package loadgen is xmppcheck's load generator engine: real XMPP sessions
// (RFC 6120, RFC 6121) driven at a fixed arrival rate (open model), with
// latency measured from each operation's scheduled time so that a slow
// server cannot hide its slowness by slowing the generator down
// (no coordinated omission).
//
// Scenarios: "login" (connect → STARTTLS → SCRAM → bind → presence at an
// arrival rate, with connect, TLS, auth and bind timed separately), "chat"
// (online users in pairs, messages at a fixed total rate, end-to-end latency
// carried in the stanza), "presence" (broadcast fan-out to rosters of a
// given size), "offline" (messages to offline users, delivered at their
// next login) and "mixed" (a weighted blend run concurrently).
//
// Sessions are logged in with internal/xmppclient and then hijacked: after
// login the hot path uses the lean codec of package wire, one reader
// goroutine per session and a few pacing workers for all sends (no
// goroutine per message). Every run is bounded by duration and count, every
// read and write has a deadline. Results (package stats) hold raw HDR
// histograms so that shard results merge exactly.
//
//	res, err := loadgen.Run(ctx, loadgen.Config{
//		Scenario: "chat", Target: target, Accounts: accts,
//		Users: 200, Rate: 2000, Duration: 15 * time.Second,
//	})
package loadgen
