// Package target defines the servers the conformance suite tests and what
// the suite may do to each (DESIGN.md, "Targets"): the embedded reference
// server in-process, a server in a container described by a target file
// (fixtures/targets/NAME/target.yaml or the user's own), and a remote
// deployment. A target offers capabilities — network, accounts, evidence,
// clock — and a claim whose needs it lacks is not testable on it.
package target
