package evidence

import (
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

func TestParseRecords(t *testing.T) {
	// Records in each byte encoding, a PLAIN record, and a round trip of
	// FormatRecordLine.

	probe := Credential{User: "user", Hash: "SHA-1", Iterations: 4096, Salt: []byte("QSXCR+Q6sek8bf92")}
	probe.StoredKey, probe.ServerKey = []byte{1}, []byte{2}
	cases := []struct {
		name, line string
		want       Credential
	}{
		{"hex", "user=alice mechanism=SCRAM-SHA-1 iterations=4096 salt=raw:3f1c-uuid stored_key=hex:ab12 server_key=hex:cd34",
			Credential{User: "alice", Hash: "SHA-1", Iterations: 4096, Salt: []byte("3f1c-uuid"), StoredKey: []byte{0xab, 0x12}, ServerKey: []byte{0xcd, 0x34}}},
		{"b64 and percent", "user=bob mechanism=SCRAM-SHA-256 iterations=10000 salt=b64:AAEC stored_key=raw:%01%02 server_key=b64:AwQ=",
			Credential{User: "bob", Hash: "SHA-256", Iterations: 10000, Salt: []byte{0, 1, 2}, StoredKey: []byte{1, 2}, ServerKey: []byte{3, 4}}},
		{"plain", "user=carol mechanism=PLAIN password=raw:hunter2%20x", Credential{User: "carol", Plaintext: true, Password: "hunter2 x"}},
		{"round trip", FormatRecordLine(probe), probe},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCorpus(0)
			c.Add("credentials:dump", []byte("# comment\n\n"+tc.line+"\n"))
			got, err := ParseRecords(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d records", len(got))
			}
			g := got[0]
			if g.File != "credentials:dump line 3" || g.User != tc.want.User || g.Hash != tc.want.Hash || g.Iterations != tc.want.Iterations ||
				string(g.Salt) != string(tc.want.Salt) || string(g.StoredKey) != string(tc.want.StoredKey) ||
				string(g.ServerKey) != string(tc.want.ServerKey) || g.Plaintext != tc.want.Plaintext || g.Password != tc.want.Password {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
		})
	}
}

// TestParseRecordsVerify: a record written from keys the SCRAM client
// computes verifies against its password, and not against another.
func TestParseRecordsVerify(t *testing.T) {
	hg, _ := hashGen("SHA-256")
	cl, _ := hg.NewClient("", "pencil", "")
	sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: "salt-bytes", Iters: 4096})
	if err != nil {
		t.Fatal(err)
	}
	line := FormatRecordLine(Credential{User: "u", Hash: "SHA-256", Iterations: 4096, Salt: []byte("salt-bytes"), StoredKey: sc.StoredKey, ServerKey: sc.ServerKey})
	c := NewCorpus(0)
	c.Add("credentials", []byte(line))
	recs, err := ParseRecords(c)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := recs[0].Verify("pencil", recs[0].Hash); !ok {
		t.Error("the right password does not verify")
	}
	if ok, _ := recs[0].Verify("pencil2", recs[0].Hash); ok {
		t.Error("a wrong password verifies")
	}
}

func TestParseRecordsErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"mechanism=PLAIN password=raw:x", "line 2: user is required"},
		{"user=a mechanism=SCRAM-SHA-1 iterations=4096 salt=raw:s stored_key=hex:zz server_key=hex:00", "line 2: stored_key"},
		{"user=a mechanism=SCRAM-SHA-1 iterations=many salt=raw:s stored_key=hex:00 server_key=hex:00", "line 2: iterations"},
		{"user=a mechanism=SCRAM-SHA-1 iterations=1 salt=s stored_key=hex:00 server_key=hex:00", "line 2: salt"},
		{"user=a mechanism=SCRAM-SHA-1 iterations=1 salt=raw:s server_key=hex:00", "needs stored_key"},
		{"user=a mechanism=DIGEST-MD5", "mechanism"},
		{"user=a colour=red", "unknown key"},
		{"user=a mechanism", "not key=value"},
	} {
		c := NewCorpus(0)
		c.Add("f", []byte("# header\n"+tc.line+"\n"))
		_, err := ParseRecords(c)
		if !errors.Is(err, ErrRecordSyntax) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.line, err, tc.want)
		}
	}
}
