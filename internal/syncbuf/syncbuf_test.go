package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
)

// TestConcurrentWrites: lines written from many goroutines all arrive whole
// (run with -race to check the locking).
func TestConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if n, err := b.Write([]byte("line\n")); n != 5 || err != nil {
					t.Errorf("Write = %d, %v", n, err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 {
		t.Fatalf("%d whole lines, want 800", got)
	}
}
