package spec

import (
	"crypto/tls"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, true},
		{"14d", 14 * 24 * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"30s", 30 * time.Second, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"", 0, false},
		{"7", 0, false},
		{"d", 0, false},
		{"7x", 0, false},
		{"seven days", 0, false},
		{"-7d", 0, false},
		{"99999999999d", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatDurationRoundTrip(t *testing.T) {
	for _, s := range []string{"7d", "14d", "1d12h", "90m", "1h30m", "30s", "0s"} {
		d, err := ParseDuration(s)
		if err != nil {
			t.Fatalf("ParseDuration(%q): %v", s, err)
		}
		if got := FormatDuration(d); got != s && !(s == "90m" && got == "1h30m") {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, s)
		}
	}
}

func TestParseTLSVersion(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
		ok   bool
	}{
		{"1.2", tls.VersionTLS12, true},
		{"1.3", tls.VersionTLS13, true},
		{"TLS1.1", tls.VersionTLS11, true},
		{"tlsv1.0", tls.VersionTLS10, true},
		{"1.4", 0, false},
		{"SSLv3", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseTLSVersion(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseTLSVersion(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && TLSVersionName(got) == "" {
			t.Errorf("TLSVersionName(%v) empty", got)
		}
	}
}

func TestParseHash(t *testing.T) {
	for in, want := range map[string]string{"sha1": HashSHA1, "SHA-1": HashSHA1, "sha-256": HashSHA256, "SHA512": HashSHA512} {
		if got, err := ParseHash(in); err != nil || got != want {
			t.Errorf("ParseHash(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseHash("md5"); err == nil {
		t.Error("ParseHash(md5) succeeded")
	}
}

func TestCatalogue(t *testing.T) {
	seen := map[ClaimID]bool{}
	for _, k := range Kinds() {
		if seen[k.ID] {
			t.Errorf("duplicate id %s", k.ID)
		}
		seen[k.ID] = true
		if k.Title == "" || k.Passes == "" {
			t.Errorf("%s: missing title or pass text", k.ID)
		}
		if !k.NeedsCap(CapNetwork) {
			t.Errorf("%s: every claim needs the network", k.ID)
		}
		for _, p := range k.Params {
			if !p.Required && (p.Default != "" || p.Type == TypeFieldList) {
				_ = p.DefaultValue() // panics on a bad default
			}
		}
		for _, l := range k.Labels() {
			for _, r := range "&|!,()/" {
				for _, c := range l {
					if c == r {
						t.Errorf("%s: label %q holds reserved %q", k.ID, l, r)
					}
				}
			}
		}
	}
	if len(seen) != 18 {
		t.Errorf("catalogue has %d kinds, docs/CLAIMS.md lists 18", len(seen))
	}
	if got := Nearest("offline.retension"); got != OfflineRetention {
		t.Errorf("Nearest = %s", got)
	}
	if TLSC2SMinVersion.Family() != FamilyTLS {
		t.Errorf("family of %s = %s", TLSC2SMinVersion, TLSC2SMinVersion.Family())
	}
}
