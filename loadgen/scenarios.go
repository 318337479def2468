package loadgen

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/loadgen/wire"
)

// runChat: every user is paired with its neighbour (0↔1, 2↔3, …); message
// k is sent by user k mod n to its partner, carrying its scheduled time.
func (r *runner) runChat(ctx context.Context, g *group, start time.Time) time.Time {
	n := len(g.idxs)
	bufs := make([][]byte, 64)
	return r.pace(ctx, start, g.pacer, g.total, func(w int, k int64, sched time.Time) {
		pos := int(k % int64(n))
		s := g.sessions[pos]
		if s == nil || s.dead.Load() {
			r.rec.Error("send:session-down")
			return
		}
		to := pos ^ 1
		if to >= n {
			to = pos
		}
		b := wire.AppendMessage(bufs[w%len(bufs)][:0], g.jid(r, to), wire.Marker{Run: r.runID, Scheduled: sched.UnixNano(), Sender: g.idxs[pos]}, r.cfg.PayloadSize)
		bufs[w%len(bufs)] = b
		r.cExpected.Add(1) // before the write: the receipt may race ahead of the counters
		if err := s.write(b); err != nil {
			r.cExpected.Add(-1)
			r.rec.Error("send:" + errorKind(err))
			return
		}
		r.cSent.Add(1)
	})
}

// runPresence: update k is broadcast by user k mod n to the contacts that
// subscribed to it.
func (r *runner) runPresence(ctx context.Context, g *group, start time.Time) time.Time {
	n := len(g.idxs)
	bufs := make([][]byte, 64)
	return r.pace(ctx, start, g.pacer, g.total, func(w int, k int64, sched time.Time) {
		pos := int(k % int64(n))
		s := g.sessions[pos]
		if s == nil || s.dead.Load() {
			r.rec.Error("send:session-down")
			return
		}
		b := wire.AppendPresence(bufs[w%len(bufs)][:0], wire.Marker{Run: r.runID, Scheduled: sched.UnixNano(), Sender: g.idxs[pos]})
		bufs[w%len(bufs)] = b
		r.cExpected.Add(int64(g.contacts))
		if err := s.write(b); err != nil {
			r.cExpected.Add(-int64(g.contacts))
			r.rec.Error("send:" + errorKind(err))
			return
		}
		r.cSent.Add(1)
	})
}

// runLogin: login k logs in account k mod n (a goroutine per login in
// flight, at most MaxInflight), sends presence, holds the session for Hold
// and closes it.
func (r *runner) runLogin(ctx context.Context, g *group, start time.Time) time.Time {
	n := len(g.idxs)
	sem := make(chan struct{}, r.cfg.MaxInflight)
	var wg sync.WaitGroup
	ids := [...]int{r.m[MetricConnect], r.m[MetricTLS], r.m[MetricAuth], r.m[MetricBind]}
	end := r.pace(ctx, start, g.pacer, g.total, func(w int, k int64, sched time.Time) {
		idx := g.idxs[int(k%int64(n))]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r.cExpected.Add(1)
		r.cSent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, 4*r.cfg.Timeout)
			defer cancel()
			s, tm, err := r.login(lctx, idx)
			for i, d := range [...]time.Duration{tm.Connect, tm.TLS, tm.Auth, tm.Bind} {
				if d > 0 {
					r.rec.Record(ids[i], idx, d)
				}
			}
			if err != nil {
				r.rec.Error("login:" + errorKind(err))
				return
			}
			if err := s.write([]byte("<presence/>")); err != nil {
				r.rec.Error("login:presence:" + errorKind(err))
				return
			}
			r.rec.Record(r.m[MetricLogin], idx, time.Since(sched))
			r.cCompleted.Add(1)
			r.sessionUp()
			if r.cfg.Hold > 0 {
				sleepCtx(ctx, r.cfg.Hold)
			}
			s.close()
			r.sessionsNow.Add(-1)
		}()
	})
	wg.Wait()
	return end
}

// runOffline: the senders send to the receivers, who are offline; then the
// receivers log in and the stored messages are timed from each receiver's
// initial presence.
func (r *runner) runOffline(ctx context.Context, g *group, start time.Time) time.Time {
	var recv *group
	for _, o := range r.groups {
		if o.kind == "offline-recv" {
			recv = o
		}
	}
	ns, nr := len(g.idxs), len(recv.idxs)
	bufs := make([][]byte, 64)
	end := r.pace(ctx, start, g.pacer, g.total, func(w int, k int64, sched time.Time) {
		s := g.sessions[int(k%int64(ns))]
		if s == nil || s.dead.Load() {
			r.rec.Error("send:session-down")
			return
		}
		b := wire.AppendMessage(bufs[w%len(bufs)][:0], recv.jid(r, int(k%int64(nr))), wire.Marker{Run: r.runID, Scheduled: sched.UnixNano(), Sender: s.idx}, r.cfg.PayloadSize)
		bufs[w%len(bufs)] = b
		if err := s.write(b); err != nil {
			r.rec.Error("send:" + errorKind(err))
			return
		}
		r.cSent.Add(1)
		r.cExpected.Add(1)
	})
	// Make sure the server has stored everything: a ping round trip from
	// every sender (its messages were processed before the ping).
	r.syncAll(ctx, g)
	r.loginAll(ctx, recv, func(s *session) { s.presenceAt.Store(time.Now().UnixNano()) })
	return end
}

// syncAll sends an XEP-0199 ping from every live session of g and waits
// for the answers (bounded by the timeout).
func (r *runner) syncAll(ctx context.Context, g *group) {
	for _, s := range g.sessions {
		if s != nil && !s.dead.Load() {
			s.write([]byte("<iq type='get' id='xc-sync' to='" + r.cfg.Target.Domain + "'><ping xmlns='urn:xmpp:ping'/></iq>"))
		}
	}
	deadline := time.NewTimer(r.cfg.Timeout)
	defer deadline.Stop()
	for _, s := range g.sessions {
		if s == nil || s.dead.Load() {
			continue
		}
		select {
		case <-s.pongs:
		case <-deadline.C:
			r.rec.Error("sync:timeout")
			return
		case <-ctx.Done():
			return
		}
	}
}

// onElement handles one element received on a session's hot path.
func (r *runner) onElement(s *session, el []byte) {
	switch string(wire.Name(el)) {
	case "message":
		if string(wire.Attr(el, "type")) == "error" {
			r.rec.Error("delivery:stanza-error:" + stanzaErrorCondition(el))
			return
		}
		m, ok := wire.FindMarker(el)
		if !ok || m.Run != r.runID {
			r.cForeign.Add(1)
			return
		}
		now := time.Now().UnixNano()
		if s.g.kind == "offline-recv" {
			r.rec.Record(r.m[MetricOffline], s.idx, time.Duration(now-s.presenceAt.Load()))
		} else {
			r.rec.Record(r.m[MetricMessage], s.idx, time.Duration(now-m.Scheduled))
		}
		r.cCompleted.Add(1)
	case "presence":
		switch string(wire.Attr(el, "type")) {
		case "":
			m, ok := wire.FindMarker(el)
			if !ok || m.Run != r.runID {
				return // initial presences and probes: not ours to count
			}
			// Only the contacts this session subscribed to count: a
			// roster left by an earlier run must not inflate the fan-out.
			g := s.g
			sp, ok1 := g.pos[m.Sender]
			mp, ok2 := g.pos[s.idx]
			if !ok1 || !ok2 || g.kind != "presence" {
				r.cForeign.Add(1)
				return
			}
			n := len(g.idxs)
			if d := (sp - mp + n) % n; d < 1 || d > g.contacts {
				r.cForeign.Add(1)
				return
			}
			r.rec.Record(r.m[MetricPresence], s.idx, time.Duration(time.Now().UnixNano()-m.Scheduled))
			r.cCompleted.Add(1)
		case "subscribe":
			from := wire.Attr(el, "from")
			b := make([]byte, 0, 64+len(from))
			b = append(b, "<presence type='subscribed' to='"...)
			b = append(b, bareJID(string(from))...)
			b = append(b, "'/>"...)
			s.write(b)
		case "subscribed":
			s.approvals.Add(1)
		case "error":
			r.rec.Error("presence:stanza-error:" + stanzaErrorCondition(el))
		}
	case "iq":
		typ := string(wire.Attr(el, "type"))
		id := string(wire.Attr(el, "id"))
		switch typ {
		case "get", "set":
			// XEP-0199 pings and roster pushes (RFC 6121 §2.1.6) get a
			// result, anything else service-unavailable (RFC 6120 §8.4).
			reply := "<iq type='result' id='" + xmlAttr(id) + "'/>"
			if !bytes.Contains(el, []byte(ns.Ping)) && !bytes.Contains(el, []byte(ns.Roster)) {
				reply = "<iq type='error' id='" + xmlAttr(id) + "'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
			}
			if from := wire.Attr(el, "from"); len(from) > 0 {
				reply = reply[:3] + " to='" + string(from) + "'" + reply[3:]
			}
			s.write([]byte(reply))
		case "result", "error":
			if id == "xc-sync" {
				select {
				case s.pongs <- struct{}{}:
				default:
				}
			}
		}
	case "stream:error":
		r.rec.Error("stream-error:" + stanzaErrorCondition([]byte("<error>"+string(el)+"</error>")))
		s.kill()
	}
}

// xmlAttr escapes an attribute value we echo back.
func xmlAttr(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			out = append(out, "&apos;"...)
		case '<':
			out = append(out, "&lt;"...)
		case '&':
			out = append(out, "&amp;"...)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}
