// Package target defines the servers the conformance suite tests and what
// the suite may do to each (docs/CLAIMS.md, "Evidence channels"): the
// embedded reference server in-process, a server in a container described
// by a target file (fixtures/targets/NAME/target.yaml or the user's own),
// and a remote deployment. A target offers capabilities — network and
// accounts, and the evidence channels logs, data, clock and purge — and
// declares each one; checks prove every channel live with a positive
// control before a negative scan of it counts.
package target
