package wire

import "testing"

func TestIntern(t *testing.T) {
	for _, s := range internSet {
		got := intern([]byte(s))
		if got != s {
			t.Fatalf("intern(%q) = %q", s, got)
		}
		if testing.AllocsPerRun(10, func() { intern([]byte(s)) }) != 0 {
			t.Errorf("interning %q allocates", s)
		}
	}
	for _, s := range []string{"", "messages", "zzz", "urn:other"} {
		if got := intern([]byte(s)); got != s {
			t.Fatalf("intern(%q) = %q", s, got)
		}
	}
}
