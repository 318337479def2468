// Package metrics defines the reference server's Prometheus metrics
// (exposition format of the Prometheus project) on a registry of its own:
// sessions, authentication results, stanzas routed, the offline queue and
// purges. No metric carries a user name or a network address as a label.
package metrics
