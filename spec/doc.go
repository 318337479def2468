// Package spec defines xmppcheck's executable policy specs: the catalogue of
// claim kinds the conformance suite knows how to test, their typed
// parameters, and the YAML policy file that turns the promises of a privacy
// policy into claims, each tied to the verbatim sentence it comes from.
//
// Claim ids are stable API. Every other package takes claim ids, families,
// capabilities and labels from here rather than typing them as strings.
package spec
