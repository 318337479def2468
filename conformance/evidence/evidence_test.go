package evidence

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

func TestAddressNeedleFindsEveryForm(t *testing.T) {
	a := netip.MustParseAddr("127.83.41.197")
	tests := []struct {
		name string
		data []byte
		form string
	}{
		{"dotted with port", []byte("c2s accepted from 127.83.41.197:53211\n"), "dotted"},
		{"ipv4-mapped", []byte("conn from [::ffff:127.83.41.197]:5222"), "ipv4-mapped"},
		{"ipv4-mapped hex", []byte("peer ::ffff:7f53:29c5 connected"), "ipv4-mapped-hex"},
		{"hex", []byte("ip=7f5329c5;"), "hex"},
		{"HEX", []byte("ip=7F5329C5;"), "hex"},
		{"packed", append([]byte("rec\x00"), 0x7f, 0x53, 0x29, 0xc5, 0), "packed"},
		{"packed mapped", append([]byte("x"), netip.AddrFrom16(a.As16()).AsSlice()...), "packed"}, // 16-byte form ends with the 4 packed bytes
		{"decimal", []byte(`{"ip":2136156613}`), "decimal"},
		{"reverse dns", []byte("PTR 197.41.83.127.in-addr.arpa"), "reverse"},
	}
	n := AddressNeedle(a)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCorpus(0)
			if err := c.Add("log", tt.data); err != nil {
				t.Fatal(err)
			}
			hits := c.Find(n)
			if len(hits) == 0 {
				t.Fatalf("no hit in %q", tt.data)
			}
			if !strings.HasPrefix(hits[0].Form, tt.form) {
				t.Errorf("form %q, want prefix %q", hits[0].Form, tt.form)
			}
		})
	}
	// Negative: another address in every form is not a hit.
	other := AddressNeedle(netip.MustParseAddr("127.0.0.9"))
	c := NewCorpus(0)
	for _, tt := range tests {
		c.Add(tt.name, tt.data)
	}
	if hits := c.Find(other); len(hits) != 0 {
		t.Errorf("unrelated address found: %v", hits)
	}
}

func TestAddressNeedleIPv6(t *testing.T) {
	a := netip.MustParseAddr("::1")
	c := NewCorpus(0)
	c.Add("a", []byte("from [0000:0000:0000:0000:0000:0000:0000:0001]"))
	if len(c.Find(AddressNeedle(a))) != 1 {
		t.Fatal("expanded IPv6 not found")
	}
}

func TestPasswordNeedle(t *testing.T) {
	pw := "Tr0ub4dor&3-hunter2"
	plainSASL := func(prefix string) string {
		return base64.StdEncoding.EncodeToString([]byte(prefix + "\x00user\x00" + pw))
	}
	utf16le := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), 0)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"plain", []byte("password=" + pw), true},
		{"sasl plain base64 align 0", []byte("<auth>" + plainSASL("") + "</auth>"), true},
		{"sasl plain base64 align 1", []byte(plainSASL("a")), true},
		{"sasl plain base64 align 2", []byte(plainSASL("ab")), true},
		{"hex", []byte(hex.EncodeToString([]byte(pw))), true},
		{"utf-16le", append([]byte{0xff, 0xfe}, utf16le(pw)...), true},
		{"percent", []byte("p=Tr0ub4dor%263-hunter2"), true},
		{"absent", []byte("password=Tr0ub4dor&3-hunter"), false},
	}
	n := PasswordNeedle(pw)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCorpus(0)
			c.Add("f", tt.data)
			hits := c.Find(n)
			if got := len(hits) > 0; got != tt.want {
				t.Fatalf("found=%v want %v (%v)", got, tt.want, hits)
			}
			for _, h := range hits {
				if strings.Contains(h.Context, pw) || strings.Contains(h.LineText, pw) || strings.Contains(h.String(), pw) {
					t.Errorf("hit context reveals the password: %q", h.Context)
				}
			}
		})
	}
}

func TestScanPositiveControl(t *testing.T) {
	c := NewCorpus(0)
	c.Add("data:a", []byte("user alice-7f3 roster"))
	needle := Literal("address", "127.0.0.5")
	if _, err := c.Scan(Literal("account name", "bob-999"), needle); !errors.Is(err, ErrControlMissing) {
		t.Fatalf("missing control: err=%v, want ErrControlMissing", err)
	}
	hits, err := c.Scan(Literal("account name", "alice-7f3"), needle)
	if err != nil || len(hits) != 0 {
		t.Fatalf("hits=%v err=%v", hits, err)
	}
	c.Add("data:b", []byte("last from 127.0.0.5"))
	hits, err = c.Scan(Literal("account name", "alice-7f3"), needle)
	if err != nil || len(hits) != 1 || hits[0].File != "data:b" || hits[0].Line != 1 {
		t.Fatalf("hits=%v err=%v", hits, err)
	}
	// An empty corpus cannot show the control.
	if _, err := NewCorpus(0).Scan(Literal("x", "x")); !errors.Is(err, ErrControlMissing) {
		t.Fatal("empty corpus passed the control")
	}
}

func TestCorpusLimitAndTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{"var/lib/p/a.dat": "aaa", "var/lib/p/b.dat": "bbbb"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.WriteHeader(&tar.Header{Name: "var/lib/p/dir", Typeflag: tar.TypeDir, Mode: 0o700})
	tw.Close()
	c := NewCorpus(0)
	if err := c.AddTar(bytes.NewReader(buf.Bytes()), "data:"); err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 2 || c.Size() != 7 {
		t.Fatalf("files %v size %d", c.Names(), c.Size())
	}
	small := NewCorpus(5)
	if err := small.AddTar(bytes.NewReader(buf.Bytes()), ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err=%v, want ErrTooLarge", err)
	}
	dir := t.TempDir()
	c2 := NewCorpus(0)
	if err := c2.AddDir(dir, "data:"); err != nil || len(c2.Files) != 0 {
		t.Fatalf("empty dir: %v %v", c2.Names(), err)
	}
}

func scramKeys(t *testing.T, h scram.HashGeneratorFcn, pw string, salt []byte, iters int) scram.StoredCredentials {
	t.Helper()
	cl, err := h.NewClient("", pw, "")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iters})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestParseProsodyDat(t *testing.T) {
	pw := "correct horse battery"
	salt := "0f3c2a5e-4b1d-4e8b-9a77-3c2d1e0f9a8b"
	k := scramKeys(t, scram.SHA1, pw, []byte(salt), 4096)
	dat := fmt.Sprintf(`return {
	["iteration_count"] = 4096;
	["salt"] = %q;
	["stored_key"] = "%x";
	["server_key"] = "%x";
};
`, salt, k.StoredKey, k.ServerKey)
	c := NewCorpus(0)
	c.Add("data:var/lib/prosody/localhost/accounts/alice%2dx.dat", []byte(dat))
	c.Add("data:var/lib/prosody/localhost/roster/alice.dat", []byte(`return {};`))
	creds, err := ParseSCRAM(FormatProsodyDat, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 1 {
		t.Fatalf("got %d records", len(creds))
	}
	cr := creds[0]
	if cr.User != "alice-x" || cr.Host != "localhost" || cr.Iterations != 4096 || cr.Plaintext {
		t.Fatalf("record %+v", cr)
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{{pw, true}, {pw + "!", false}} {
		ok, err := cr.Verify(tt.pw, "SHA-1")
		if err != nil || ok != tt.want {
			t.Errorf("Verify(%q)=%v,%v want %v", tt.pw, ok, err, tt.want)
		}
	}
	c2 := NewCorpus(0)
	c2.Add("data:h/accounts/bob.dat", []byte("return {\n\t[\"password\"] = \"hunter2\\\"x\";\n\tnested = { a = \"}\" };\n};"))
	creds, err = ParseSCRAM(FormatProsodyDat, c2)
	if err != nil || len(creds) != 1 || !creds[0].Plaintext {
		t.Fatalf("plaintext record: %+v %v", creds, err)
	}
}

func TestParseEjabberdDump(t *testing.T) {
	pw := "s3cret-Ω"
	salt := make([]byte, 16)
	rand.Read(salt)
	k := scramKeys(t, scram.SHA1, pw, salt, 4096)
	b := base64.StdEncoding.EncodeToString
	dump := fmt.Sprintf("{passwd,{<<\"alice\">>,<<\"localhost\">>},{scram,<<\"%s\">>,<<\"%s\">>,<<\"%s\">>,sha,4096}}.\n"+
		"{passwd,{<<\"old\">>,<<\"localhost\">>},{scram,<<\"%s\">>,<<\"%s\">>,<<\"%s\">>,4096}}.\n"+
		"{passwd,{<<\"plain\">>,<<\"localhost\">>},<<\"hunter2\">>}.\n",
		b(k.StoredKey), b(k.ServerKey), b(salt), b(k.StoredKey), b(k.ServerKey), b(salt))
	c := NewCorpus(0)
	c.Add("dump", []byte(dump))
	creds, err := ParseSCRAM(FormatEjabberdMnesia, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 3 {
		t.Fatalf("got %d records: %+v", len(creds), creds)
	}
	for _, cr := range creds[:2] {
		if ok, err := cr.Verify(pw, cr.Hash); !ok || err != nil {
			t.Errorf("%s: Verify=%v %v", cr.User, ok, err)
		}
		if ok, _ := cr.Verify("wrong", cr.Hash); ok {
			t.Errorf("%s: wrong password verified", cr.User)
		}
	}
	if !creds[2].Plaintext || creds[2].User != "plain" {
		t.Errorf("plain record %+v", creds[2])
	}
}

func TestParseReferenceExport(t *testing.T) {
	salt := []byte("0123456789abcdef")
	k := scramKeys(t, scram.SHA256, "pw", salt, 10000)
	line := FormatReferenceLine(Credential{User: "u", Host: "h", Hash: "SHA-256", Iterations: 10000, Salt: salt, StoredKey: k.StoredKey, ServerKey: k.ServerKey})
	c := NewCorpus(0)
	c.Add("export", []byte(line+"\n"))
	creds, err := ParseSCRAM(FormatReference, c)
	if err != nil || len(creds) != 1 {
		t.Fatal(creds, err)
	}
	if ok, _ := creds[0].Verify("pw", "SHA-256"); !ok {
		t.Error("reference record does not verify")
	}
	if _, err := ParseSCRAM("mysql", c); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("err=%v", err)
	}
}

func TestEstimateURLEntropy(t *testing.T) {
	const n = 64
	gen := func(f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "https://upload.localhost:5281/upload/" + f(i) + "/photo.jpg"
		}
		return out
	}
	randHex := func(nbytes int) string {
		b := make([]byte, nbytes)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	uuid4 := func() string {
		b := make([]byte, 16)
		rand.Read(b)
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	// uuid7 is RFC 9562 §5.7: 48 bits of Unix milliseconds, version 7,
	// 12 bits rand_a, the variant, 62 bits rand_b; the clock advances a
	// little between slots, as on a server handing them out.
	uuid7 := func(i int) string {
		b := make([]byte, 16)
		rand.Read(b)
		ms := uint64(1764100000000 + 3*i)
		for j := range 6 {
			b[j] = byte(ms >> (40 - 8*j))
		}
		b[6] = b[6]&0x0f | 0x70
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	// uuid1 is RFC 9562 §5.1 with a fixed node and a random clock sequence.
	uuid1 := func(i int) string {
		b := make([]byte, 16)
		rand.Read(b[8:10])
		t := uint64(0x1f0c0ffee000000 + 10007*uint64(i))
		b[0], b[1], b[2], b[3] = byte(t>>24), byte(t>>16), byte(t>>8), byte(t)
		b[4], b[5] = byte(t>>40), byte(t>>32)
		b[6], b[7] = byte(t>>56)&0x0f|0x10, byte(t>>48)
		b[8] = b[8]&0x3f | 0x80
		copy(b[10:], []byte{2, 66, 172, 17, 0, 2})
		h := hex.EncodeToString(b)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	tests := []struct {
		name     string
		urls     []string
		min, max float64
	}{
		{"uuid v7: rand_b only", gen(uuid7), 40, 62},
		{"uuid v7 without hyphens", gen(func(i int) string { return strings.ReplaceAll(uuid7(i), "-", "") }), 40, 62},
		{"uuid v1: clock sequence only", gen(uuid1), 4, 14},
		{"128-bit hex", gen(func(int) string { return randHex(16) }), 124, 129},
		{"256-bit base64url", gen(func(int) string {
			b := make([]byte, 32)
			rand.Read(b)
			return base64.RawURLEncoding.EncodeToString(b)
		}), 240, 260},
		{"uuid v4", gen(func(int) string { return uuid4() }), 110, 123},
		{"128-bit base64url (22 characters, the last holding 2 bits)", gen(func(int) string {
			b := make([]byte, 16)
			rand.Read(b)
			return base64.RawURLEncoding.EncodeToString(b)
		}), 128, 132},
		{"counter", gen(func(i int) string { return fmt.Sprint(100000 + i) }), 1, 10},
		{"120-bit hex", gen(func(int) string { return randHex(15) }), 116, 121},
		{"timestamp and 16 random bits", gen(func(i int) string { return fmt.Sprintf("1764100000%03d-%s", i, randHex(2)) }), 10, 26},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			est, err := EstimateURLEntropy(tt.urls)
			if err != nil {
				t.Fatal(err)
			}
			if est.Bits < tt.min || est.Bits > tt.max {
				t.Errorf("bits=%.1f want [%v,%v]: %v", est.Bits, tt.min, tt.max, est.Detail)
			}
		})
	}
	if _, err := EstimateURLEntropy([]string{"a"}); err == nil {
		t.Error("one sample accepted")
	}
	dup := gen(func(i int) string { return fmt.Sprint(i % 32) })
	if est, _ := EstimateURLEntropy(dup); est.Duplicates != 32 {
		t.Errorf("duplicates=%d", est.Duplicates)
	}
}
