package xmppclient

import "sort"

// maxInbox bounds the stanzas queued for Recv; beyond it the oldest are
// dropped (a test that never reads must not exhaust memory).
const maxInbox = 100000

// inbox is the queue of received stanzas that no request was waiting for,
// in arrival order. Taking the first stanza is O(1); taking one from the
// middle (RecvMatch) leaves a tombstone that is skipped and compacted away
// later, so every operation is amortised O(1) apart from the scan for a
// match. Each entry carries a sequence number so that a RecvMatch that
// waits for more stanzas tests only the ones that arrived since its last
// look (a scan position that survives compaction), never the whole queue
// again. The zero value is an empty inbox; it is not safe for concurrent
// use (the Client guards it with its mutex).
type inbox struct {
	q    []inboxEntry // q[head:] in arrival order (seq strictly increasing), some removed
	head int
	live int    // entries of q[head:] not removed
	gone int    // removed entries (tombstones) in q[head:]
	seq  uint64 // sequence number of the next pushed stanza
}

type inboxEntry struct {
	seq     uint64
	removed bool
	s       Stanza
}

// push queues s, dropping the oldest stanza when maxInbox are queued.
func (b *inbox) push(s Stanza) {
	if b.live >= maxInbox {
		b.removeAt(b.head)
	}
	b.q = append(b.q, inboxEntry{seq: b.seq, s: s})
	b.seq++
	b.live++
}

// take removes and returns the first queued stanza with a sequence number
// ≥ from for which match (nil: any) returns true, and the sequence number
// a further look with the same match may start from: every stanza before
// it has been tested (and the one taken is gone).
func (b *inbox) take(match func(Stanza) bool, from uint64) (s Stanza, ok bool, next uint64) {
	q := b.q[b.head:]
	i := 0
	if from > 0 && len(q) > 0 && q[0].seq < from {
		i = sort.Search(len(q), func(k int) bool { return q[k].seq >= from })
	}
	for ; i < len(q); i++ {
		e := &q[i]
		if e.removed || (match != nil && !match(e.s)) {
			continue
		}
		s, next = e.s, e.seq+1
		b.removeAt(b.head + i)
		return s, true, next
	}
	return Stanza{}, false, b.seq
}

// len returns the number of queued stanzas.
func (b *inbox) len() int { return b.live }

// removeAt removes the live entry at index i of q.
func (b *inbox) removeAt(i int) {
	b.q[i] = inboxEntry{seq: b.q[i].seq, removed: true} // drop the stanza's memory now
	b.live--
	if i != b.head {
		b.gone++
		if b.gone > 32 && b.gone > b.live {
			b.compact()
		}
		return
	}
	// Popping from the front: skip the tombstones behind it.
	b.head++
	for b.head < len(b.q) && b.q[b.head].removed {
		b.q[b.head] = inboxEntry{}
		b.head++
		b.gone--
	}
	switch {
	case b.live == 0:
		b.reset()
	case b.head > 32 && b.head > len(b.q)/2:
		// Move the queue down so the slice does not only grow.
		n := copy(b.q, b.q[b.head:])
		clear(b.q[n:])
		b.q = b.q[:n]
		b.head = 0
	}
}

// compact drops every tombstone; each call removes more entries than stay,
// so its cost is amortised over the removals.
func (b *inbox) compact() {
	n := 0
	for _, e := range b.q[b.head:] {
		if !e.removed {
			b.q[n] = e
			n++
		}
	}
	clear(b.q[n:])
	b.q = b.q[:n]
	b.head, b.gone = 0, 0
}

// reset empties the queue, keeping a modest buffer for reuse.
func (b *inbox) reset() {
	if cap(b.q) > 4096 {
		b.q = nil
	} else {
		clear(b.q)
		b.q = b.q[:0]
	}
	b.head, b.gone, b.live = 0, 0, 0
}
