package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the server's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	// Connections accepted, by listener: "c2s" (STARTTLS port), "c2s_tls"
	// (direct TLS port).
	Connections *prometheus.CounterVec
	// ConnectionsRefused, by reason: "per_address_cap".
	ConnectionsRefused *prometheus.CounterVec
	// Sessions currently open, by state: "negotiating" (before resource
	// binding) and "bound".
	Sessions *prometheus.GaugeVec
	// Auth results, by mechanism (SCRAM-SHA-1, SCRAM-SHA-256, their -PLUS
	// variants) and result: "success", "failure" (wrong credentials),
	// "refused" (brute-force protection), "aborted".
	Auth *prometheus.CounterVec
	// Stanzas routed, by kind ("message", "presence", "iq") and outcome:
	// "delivered" (to at least one session), "offline" (stored),
	// "handled" (answered by the server), "remote" (handed to s2s),
	// "error" (bounced with a stanza error), "dropped" (silently ignored as
	// RFC 6121 §8 asks).
	Stanzas *prometheus.CounterVec
	// StreamErrors sent, by condition (RFC 6120 §4.9.3).
	StreamErrors *prometheus.CounterVec
	// OfflineQueue is the number of offline messages stored.
	OfflineQueue prometheus.Gauge
	// Purged records, by what: "offline" (offline.retention).
	Purged *prometheus.CounterVec
	// Registrations (XEP-0077), by result: "created", "refused_rate",
	// "conflict", "invalid", "removed", "password_changed".
	Registrations *prometheus.CounterVec
}

// New creates the collectors on a fresh registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppref_connections_total", Help: "Connections accepted, by listener (c2s, c2s_tls).",
		}, []string{"listener"}),
		ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppref_connections_refused_total", Help: "Connections refused, by reason (per_address_cap).",
		}, []string{"reason"}),
		Sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "xmppref_sessions", Help: "Open client sessions, by state (negotiating, bound).",
		}, []string{"state"}),
		Auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppref_auth_total", Help: "SASL authentications, by mechanism and result (success, failure, refused, aborted).",
		}, []string{"mechanism", "result"}),
		Stanzas: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppref_stanzas_total", Help: "Stanzas routed, by kind (message, presence, iq) and outcome (delivered, offline, handled, remote, error, dropped).",
		}, []string{"kind", "outcome"}),
		StreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppref_stream_errors_total", Help: "Stream errors sent, by condition.",
		}, []string{"condition"}),
		OfflineQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppref_offline_messages", Help: "Offline messages stored.",
		}),
		Purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppref_purged_total", Help: "Records deleted by retention purges, by what (offline).",
		}, []string{"what"}),
		Registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppref_registrations_total", Help: "In-band registration events, by result (created, refused_rate, conflict, invalid, removed, password_changed).",
		}, []string{"result"}),
	}
	r.MustRegister(m.Connections, m.ConnectionsRefused, m.Sessions, m.Auth, m.Stanzas,
		m.StreamErrors, m.OfflineQueue, m.Purged, m.Registrations,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
