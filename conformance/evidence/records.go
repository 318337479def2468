package evidence

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// FormatRecords is the neutral credential line format a target file's
// evidence.credentials command prints (CONTRIBUTING.md, docs/CLAIMS.md):
// one record a line, space-separated key=value pairs, "#" comments and
// blank lines ignored:
//
//	user=alice mechanism=SCRAM-SHA-1 iterations=4096 salt=raw:3f1c-uuid stored_key=hex:ab12… server_key=hex:cd34…
//	user=bob mechanism=PLAIN password=raw:hunter2
//
// Keys: user (the localpart, required), mechanism (SCRAM-SHA-1,
// SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN, required); for SCRAM iterations
// (decimal), salt, stored_key and server_key; for PLAIN password. Byte
// values carry an encoding prefix: "hex:", "b64:" (standard base64) or
// "raw:" (percent-encoded bytes).
const FormatRecords StoreFormat = "records"

// ErrRecordSyntax is wrapped by ParseRecords errors; the message names the
// artifact and line.
var ErrRecordSyntax = errors.New("evidence: credential record")

var recordKeys = []string{"user", "mechanism", "iterations", "salt", "stored_key", "server_key", "password"}

// ParseRecords reads FormatRecords credential lines from every artifact of
// the corpus.
func ParseRecords(c *Corpus) ([]Credential, error) {
	var out []Credential
	for _, f := range c.Files {
		sc := bufio.NewScanner(bytes.NewReader(f.Data))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			cred, err := parseRecord(line)
			if err != nil {
				return nil, fmt.Errorf("%w: %s line %d: %v", ErrRecordSyntax, f.Name, n, err)
			}
			cred.File = fmt.Sprintf("%s line %d", f.Name, n)
			out = append(out, cred)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRecordSyntax, f.Name, err)
		}
	}
	return out, nil
}

func parseRecord(line string) (Credential, error) {
	kv := map[string]string{}
	var c Credential
	for _, field := range strings.Fields(line) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return c, fmt.Errorf("%q is not key=value", field)
		}
		if !slices.Contains(recordKeys, k) {
			return c, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(recordKeys, ", "))
		}
		if _, dup := kv[k]; dup {
			return c, fmt.Errorf("key %q given twice", k)
		}
		kv[k] = v
		c.Fields = append(c.Fields, k)
	}
	c.User = kv["user"]
	if c.User == "" {
		return c, errors.New("user is required")
	}
	mech := kv["mechanism"]
	switch mech {
	case "PLAIN":
		pw, ok := kv["password"]
		if !ok {
			return c, errors.New("PLAIN needs password")
		}
		b, err := decodeBytes(pw)
		if err != nil {
			return c, fmt.Errorf("password: %v", err)
		}
		c.Plaintext, c.Password = true, string(b)
		return c, nil
	case "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512":
		c.Hash = strings.TrimPrefix(mech, "SCRAM-")
	case "":
		return c, errors.New("mechanism is required")
	default:
		return c, fmt.Errorf("mechanism %q is not SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN", mech)
	}
	for _, k := range []string{"iterations", "salt", "stored_key", "server_key"} {
		if _, ok := kv[k]; !ok {
			return c, fmt.Errorf("%s needs %s", mech, k)
		}
	}
	it, err := strconv.Atoi(kv["iterations"])
	if err != nil || it < 1 {
		return c, fmt.Errorf("iterations %q is not a positive decimal number", kv["iterations"])
	}
	c.Iterations = it
	for _, f := range []struct {
		key string
		dst *[]byte
	}{{"salt", &c.Salt}, {"stored_key", &c.StoredKey}, {"server_key", &c.ServerKey}} {
		b, err := decodeBytes(kv[f.key])
		if err != nil {
			return c, fmt.Errorf("%s: %v", f.key, err)
		}
		*f.dst = b
	}
	if _, ok := kv["password"]; ok {
		c.Plaintext = true // a SCRAM record that also carries the password
	}
	return c, nil
}

// decodeBytes decodes a "hex:", "b64:" or "raw:" value.
func decodeBytes(v string) ([]byte, error) {
	enc, s, ok := strings.Cut(v, ":")
	if !ok {
		return nil, fmt.Errorf("%q has no encoding prefix (hex:, b64: or raw:)", v)
	}
	switch enc {
	case "hex":
		return hex.DecodeString(s)
	case "b64":
		return base64.StdEncoding.DecodeString(s)
	case "raw":
		u, err := url.PathUnescape(s)
		return []byte(u), err
	}
	return nil, fmt.Errorf("unknown encoding prefix %q (hex:, b64: or raw:)", enc)
}

// FormatRecordLine writes c in FormatRecords (SCRAM records; PLAIN when
// c.Plaintext and c.Password are set).
func FormatRecordLine(c Credential) string {
	if c.Plaintext && c.StoredKey == nil {
		return fmt.Sprintf("user=%s mechanism=PLAIN password=raw:%s", c.User, url.PathEscape(c.Password))
	}
	h := c.Hash
	if h == "" {
		h = "SHA-1"
	}
	return fmt.Sprintf("user=%s mechanism=SCRAM-%s iterations=%d salt=b64:%s stored_key=hex:%x server_key=hex:%x",
		c.User, h, c.Iterations, base64.StdEncoding.EncodeToString(c.Salt), c.StoredKey, c.ServerKey)
}
