package xmppclient

import (
	"encoding/xml"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

func stanzaN(kind string, n int) Stanza {
	return Stanza{Name: xml.Name{Space: ns.Client, Local: kind}, ID: strconv.Itoa(n)}
}

func isKind(k string) func(Stanza) bool { return func(s Stanza) bool { return s.Name.Local == k } }

// sliceInbox is the obvious queue (a slice, removal by copying the rest
// down), kept as the model the inbox must agree with and as the
// benchmark's baseline: it is what the client used before.
type sliceInbox struct{ q []Stanza }

func (b *sliceInbox) push(s Stanza) {
	if len(b.q) >= maxInbox {
		b.q = b.q[1:]
	}
	b.q = append(b.q, s)
}

func (b *sliceInbox) take(match func(Stanza) bool) (Stanza, bool) {
	for i, s := range b.q {
		if match == nil || match(s) {
			b.q = append(b.q[:i:i], b.q[i+1:]...)
			return s, true
		}
	}
	return Stanza{}, false
}

func TestInboxOrderAndMatch(t *testing.T) {
	var b inbox
	for i := range 10 {
		kind := "presence"
		if i%3 == 0 {
			kind = "message"
		}
		b.push(stanzaN(kind, i))
	}
	tests := []struct {
		match  func(Stanza) bool
		wantID string
		wantOK bool
	}{
		{isKind("message"), "0", true},
		{isKind("message"), "3", true},
		{nil, "1", true},
		{isKind("iq"), "", false},
		{isKind("message"), "6", true},
		{isKind("message"), "9", true},
		{isKind("message"), "", false},
		{nil, "2", true},
		{isKind("presence"), "4", true},
	}
	for i, tt := range tests {
		s, ok, _ := b.take(tt.match, 0)
		if ok != tt.wantOK || s.ID != tt.wantID {
			t.Fatalf("take %d: got %q %v, want %q %v", i, s.ID, ok, tt.wantID, tt.wantOK)
		}
	}
	if b.len() != 3 {
		t.Fatalf("len %d, want 3 (5, 7, 8)", b.len())
	}
}

// TestInboxFrom: a look that starts from the position a previous look
// returned tests only what arrived since, and still finds it.
func TestInboxFrom(t *testing.T) {
	var b inbox
	for i := range 100 {
		b.push(stanzaN("presence", i))
	}
	tested := 0
	count := func(s Stanza) bool { tested++; return s.Name.Local == "message" }
	_, ok, from := b.take(count, 0)
	if ok || tested != 100 {
		t.Fatalf("first look: ok=%v tested=%d", ok, tested)
	}
	b.push(stanzaN("presence", 100))
	b.push(stanzaN("message", 101))
	tested = 0
	s, ok, from := b.take(count, from)
	if !ok || s.ID != "101" || tested != 2 {
		t.Fatalf("second look: %q ok=%v tested=%d, want 101 after 2 tests", s.ID, ok, tested)
	}
	// Compaction in between (many removals from the middle) keeps the
	// position valid.
	for i := 0; i < 80; i += 2 {
		if _, ok, _ := b.take(func(s Stanza) bool { return s.ID == strconv.Itoa(i) }, 0); !ok {
			t.Fatalf("stanza %d not found", i)
		}
	}
	b.push(stanzaN("message", 102))
	tested = 0
	s, ok, _ = b.take(count, from)
	if !ok || s.ID != "102" || tested != 1 {
		t.Fatalf("after compaction: %q ok=%v tested=%d", s.ID, ok, tested)
	}
}

func TestInboxDropsOldest(t *testing.T) {
	var b inbox
	for i := range maxInbox + 5 {
		b.push(stanzaN("message", i))
	}
	if b.len() != maxInbox {
		t.Fatalf("len %d", b.len())
	}
	if s, _, _ := b.take(nil, 0); s.ID != "5" {
		t.Fatalf("oldest kept is %q, want 5", s.ID)
	}
}

// TestInboxModel: random pushes and takes agree with the slice model.
func TestInboxModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []string{"message", "presence", "iq"}
	for round := range 20 {
		var b inbox
		var m sliceInbox
		n := 0
		for op := range 5000 {
			if rng.IntN(100) < 55 {
				s := stanzaN(kinds[rng.IntN(3)], n)
				n++
				b.push(s)
				m.push(s)
				continue
			}
			var match func(Stanza) bool
			if k := rng.IntN(4); k < 3 {
				match = isKind(kinds[k])
			}
			got, ok1, _ := b.take(match, 0)
			want, ok2 := m.take(match)
			if ok1 != ok2 || got.ID != want.ID || got.Name != want.Name {
				t.Fatalf("round %d op %d: inbox %q %v, model %q %v", round, op, got.ID, ok1, want.ID, ok2)
			}
			if b.len() != len(m.q) {
				t.Fatalf("round %d op %d: len %d, model %d", round, op, b.len(), len(m.q))
			}
		}
	}
}

// BenchmarkInbox compares the inbox with the slice queue it replaced, side
// by side in one run (they alternate per iteration, so both see the same
// machine load), on the two patterns that made the client slow down with
// thousands of stanzas unread:
//
//   - backlog: 5000 stanzas queued, then all received in order (Recv);
//   - match-while-unmatched-arrive: ten RecvMatch calls for a message, one
//     after the other; while each waits, 1000 presences that nobody reads
//     arrive one at a time (a look after each arrival, as the call wakes
//     for each) before its message does; the presences pile up to 10000.
//
// ratio is the slice queue's time over the inbox's.
//
//	go test -run '^$' -bench Inbox -benchtime 5x ./internal/xmppclient
func BenchmarkInbox(b *testing.B) {
	backlog := func(push func(Stanza), take func() bool) {
		for i := range 5000 {
			push(stanzaN("message", i))
		}
		for take() {
		}
	}
	// calls runs the RecvMatch calls; newCall starts one and returns its
	// look (a wake-up).
	calls := func(push func(Stanza), newCall func() func() bool) {
		n := 0
		for range 10 {
			look := newCall()
			for range 1000 {
				push(stanzaN("presence", n))
				n++
				if look() {
					panic("presence taken")
				}
			}
			push(stanzaN("message", n))
			n++
			if !look() {
				panic("message not found")
			}
		}
	}
	b.Run("backlog", func(b *testing.B) {
		var tNew, tOld time.Duration
		for range b.N {
			t0 := time.Now()
			var in inbox
			backlog(in.push, func() bool { _, ok, _ := in.take(nil, 0); return ok })
			tNew += time.Since(t0)
			t0 = time.Now()
			var old sliceInbox
			backlog(old.push, func() bool { _, ok := old.take(nil); return ok })
			tOld += time.Since(t0)
		}
		report(b, tNew, tOld, 5000)
	})
	b.Run("match-while-unmatched-arrive", func(b *testing.B) {
		var tNew, tOld time.Duration
		msg := isKind("message")
		for range b.N {
			t0 := time.Now()
			var in inbox
			calls(in.push, func() func() bool {
				var from uint64 // RecvMatch's scan position, per call
				return func() bool {
					_, ok, next := in.take(msg, from)
					from = next
					return ok
				}
			})
			tNew += time.Since(t0)
			t0 = time.Now()
			var old sliceInbox
			calls(old.push, func() func() bool {
				return func() bool { _, ok := old.take(msg); return ok }
			})
			tOld += time.Since(t0)
		}
		report(b, tNew, tOld, 10010)
	})
}

func report(b *testing.B, tNew, tOld time.Duration, perIter int) {
	n := float64(b.N * perIter)
	b.ReportMetric(float64(tNew.Nanoseconds())/n, "ns/stanza")
	b.ReportMetric(float64(tOld.Nanoseconds())/n, "slice-ns/stanza")
	b.ReportMetric(float64(tOld)/float64(tNew), "ratio")
}
