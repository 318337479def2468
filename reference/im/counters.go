package im

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xmppcheck/xmppcheck/reference/metrics"
)

// counters caches the stanza counters by kind and outcome, so that the hot
// path does not hash label values for every stanza.
type counters struct {
	m map[[2]string]prometheus.Counter
}

func newCounters(m *metrics.Metrics) counters {
	c := counters{m: map[[2]string]prometheus.Counter{}}
	for _, k := range []string{"message", "presence", "iq"} {
		for _, o := range []string{"delivered", "offline", "handled", "remote", "error", "dropped"} {
			c.m[[2]string{k, o}] = m.Stanzas.WithLabelValues(k, o)
		}
	}
	return c
}

// inc counts one stanza of kind with outcome.
func (r *Router) inc(kind, outcome string) {
	if c, ok := r.count.m[[2]string{kind, outcome}]; ok {
		c.Inc()
		return
	}
	r.cfg.Metrics.Stanzas.WithLabelValues(kind, outcome).Inc()
}
