package evidence

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// StoreFormat names a known layout of credential records at rest.
type StoreFormat string

// Known store formats (target files' evidence.store_format).
const (
	// FormatReference is the reference server's export of its store.
	FormatReference StoreFormat = "reference"
	// FormatProsodyDat is Prosody's internal storage: one Lua table per
	// account in DATA/HOST/accounts/USER.dat.
	FormatProsodyDat StoreFormat = "prosody-dat"
	// FormatEjabberdMnesia is the text dump of ejabberd's Mnesia database
	// (`ejabberdctl dump FILE`), passwd records.
	FormatEjabberdMnesia StoreFormat = "ejabberd-mnesia"
)

// StoreFormats lists the formats ParseSCRAM knows.
func StoreFormats() []StoreFormat {
	return []StoreFormat{FormatReference, FormatProsodyDat, FormatEjabberdMnesia}
}

// ErrUnknownFormat is returned for a store format ParseSCRAM does not know.
var ErrUnknownFormat = errors.New("evidence: unknown store format")

// Credential is one account's authentication record as found at rest.
type Credential struct {
	// Where the record was found.
	File string
	User string
	Host string
	// Hash is the SCRAM hash name ("SHA-1") when the format says; empty
	// when it does not (Prosody's internal_hashed is SCRAM-SHA-1).
	Hash       string
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
	// Plaintext reports a record that holds the password itself (Prosody's
	// "password" field, ejabberd's plain passwd record).
	Plaintext bool
	// Password is the stored password where the format carries it in a
	// field of its own (FormatRecords PLAIN records).
	Password string
	// Fields lists every field name the record holds, so a check can tell
	// SCRAM keys apart from anything else stored beside them.
	Fields []string
}

// ParseSCRAM extracts credential records of the given format from the
// corpus.
func ParseSCRAM(format StoreFormat, c *Corpus) ([]Credential, error) {
	var out []Credential
	for _, f := range c.Files {
		var creds []Credential
		var err error
		switch format {
		case FormatProsodyDat:
			creds, err = parseProsodyAccount(f)
		case FormatEjabberdMnesia:
			creds, err = parseEjabberdDump(f)
		case FormatReference:
			creds, err = parseReferenceExport(f)
		default:
			return nil, fmt.Errorf("%w: %q (known: prosody-dat, ejabberd-mnesia, reference)", ErrUnknownFormat, format)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, creds...)
	}
	return out, nil
}

// Verify recomputes StoredKey and ServerKey from the password, the record's
// salt and iteration count (RFC 5802 §3) with hash name h, and reports
// whether both match the record.
func (c Credential) Verify(password, h string) (bool, error) {
	hg, err := hashGen(h)
	if err != nil {
		return false, err
	}
	client, err := hg.NewClient("", password, "")
	if err != nil {
		return false, fmt.Errorf("evidence: scram client: %w", err)
	}
	sc, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations})
	if err != nil {
		return false, fmt.Errorf("evidence: scram keys: %w", err)
	}
	return hmac.Equal(sc.StoredKey, c.StoredKey) && hmac.Equal(sc.ServerKey, c.ServerKey), nil
}

func hashGen(h string) (scram.HashGeneratorFcn, error) {
	switch h {
	case "SHA-1", "":
		return scram.SHA1, nil
	case "SHA-256":
		return scram.SHA256, nil
	case "SHA-512":
		return scram.SHA512, nil
	}
	return nil, fmt.Errorf("evidence: unsupported SCRAM hash %q", h)
}

// HashFunc returns the hash constructor for a SCRAM hash name.
func HashFunc(h string) (func() hash.Hash, error) {
	switch h {
	case "SHA-1", "":
		return sha1.New, nil
	case "SHA-256":
		return sha256.New, nil
	case "SHA-512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("evidence: unsupported SCRAM hash %q", h)
}

// --- Prosody ----------------------------------------------------------------

// prosodyAccountPath matches DATA/HOST/accounts/USER.dat; Prosody
// percent-encodes host and user names ("%2e" for dots in some versions).
var prosodyAccountPath = regexp.MustCompile(`(?:^|/)([^/]+)/accounts/([^/]+)\.dat$`)

func parseProsodyAccount(f File) ([]Credential, error) {
	m := prosodyAccountPath.FindStringSubmatch(f.Name)
	if m == nil {
		return nil, nil
	}
	fields, err := ParseLuaTable(f.Data)
	if err != nil {
		return nil, fmt.Errorf("evidence: %s: %w", f.Name, err)
	}
	host, _ := url.PathUnescape(m[1])
	user, _ := url.PathUnescape(m[2])
	c := Credential{File: f.Name, User: user, Host: host, Hash: "SHA-1"}
	for k := range fields {
		c.Fields = append(c.Fields, k)
	}
	if pw, ok := fields["password"]; ok && pw != "" {
		c.Plaintext = true
	}
	c.Salt = []byte(fields["salt"]) // util.uuid string, used as raw salt bytes
	if it := fields["iteration_count"]; it != "" {
		c.Iterations, _ = strconv.Atoi(it)
	}
	// mod_auth_internal_hashed stores the keys as lower-case hex.
	if c.StoredKey, err = hex.DecodeString(fields["stored_key"]); err != nil {
		return nil, fmt.Errorf("evidence: %s: stored_key: %w", f.Name, err)
	}
	if c.ServerKey, err = hex.DecodeString(fields["server_key"]); err != nil {
		return nil, fmt.Errorf("evidence: %s: server_key: %w", f.Name, err)
	}
	return []Credential{c}, nil
}

// ParseLuaTable reads the flat key/value table Prosody's datamanager writes
// ("return { [\"key\"] = value; … };") and returns string and number values
// as strings. Nested tables are skipped.
func ParseLuaTable(b []byte) (map[string]string, error) {
	s := string(bytes.TrimSpace(b))
	s = strings.TrimPrefix(s, "return")
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return nil, errors.New("not a Lua table")
	}
	p := &luaParser{s: s, i: 1}
	out := map[string]string{}
	for {
		p.space()
		if p.i >= len(p.s) {
			return nil, errors.New("unterminated Lua table")
		}
		if p.s[p.i] == '}' {
			return out, nil
		}
		var key string
		switch {
		case p.s[p.i] == '[':
			p.i++
			p.space()
			k, err := p.value()
			if err != nil {
				return nil, err
			}
			key = k
			p.space()
			if !p.eat(']') {
				return nil, fmt.Errorf("expected ] at %d", p.i)
			}
		default:
			start := p.i
			for p.i < len(p.s) && (isIdent(p.s[p.i])) {
				p.i++
			}
			key = p.s[start:p.i]
			if key == "" {
				return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
			}
		}
		p.space()
		if !p.eat('=') {
			return nil, fmt.Errorf("expected = at %d", p.i)
		}
		p.space()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[key] = v
		p.space()
		if p.i < len(p.s) && (p.s[p.i] == ';' || p.s[p.i] == ',') {
			p.i++
		}
	}
}

type luaParser struct {
	s string
	i int
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *luaParser) space() {
	for p.i < len(p.s) {
		switch {
		case strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0:
			p.i++
		case strings.HasPrefix(p.s[p.i:], "--"):
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func (p *luaParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *luaParser) value() (string, error) {
	if p.i >= len(p.s) {
		return "", errors.New("unexpected end of table")
	}
	switch c := p.s[p.i]; {
	case c == '"' || c == '\'':
		return p.str(c)
	case c == '{': // nested table: skip, balancing braces outside strings
		depth := 0
		for p.i < len(p.s) {
			switch p.s[p.i] {
			case '"', '\'':
				if _, err := p.str(p.s[p.i]); err != nil {
					return "", err
				}
				continue
			case '{':
				depth++
			case '}':
				depth--
			}
			p.i++
			if depth == 0 {
				return "", nil
			}
		}
		return "", errors.New("unterminated nested table")
	default:
		start := p.i
		for p.i < len(p.s) && strings.IndexByte(",;]} \t\r\n", p.s[p.i]) < 0 {
			p.i++
		}
		return p.s[start:p.i], nil
	}
}

// str reads a Lua short string with %q-style escapes.
func (p *luaParser) str(q byte) (string, error) {
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			e := p.s[p.i]
			switch {
			case e == 'n' || e == '\n':
				b.WriteByte('\n')
				p.i++
			case e == 'r':
				b.WriteByte('\r')
				p.i++
			case e == 't':
				b.WriteByte('\t')
				p.i++
			case e >= '0' && e <= '9':
				j := p.i
				for j < len(p.s) && j < p.i+3 && p.s[j] >= '0' && p.s[j] <= '9' {
					j++
				}
				n, _ := strconv.Atoi(p.s[p.i:j])
				b.WriteByte(byte(n))
				p.i = j
			case e == 'x' && p.i+2 < len(p.s):
				n, err := strconv.ParseUint(p.s[p.i+1:p.i+3], 16, 8)
				if err != nil {
					return "", fmt.Errorf("bad \\x escape at %d", p.i)
				}
				b.WriteByte(byte(n))
				p.i += 3
			default:
				b.WriteByte(e)
				p.i++
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("unterminated string")
}

// --- ejabberd -----------------------------------------------------------------

// ejabberd's passwd record holds either a #scram{} record with base64 keys
// (5 fields since the hash field was added, 4 before) or the plain password.
var (
	ejabberdSCRAM = regexp.MustCompile(`\{passwd,\s*\{<<"((?:[^"\\]|\\.)*)"(?:/utf8)?>>,\s*<<"((?:[^"\\]|\\.)*)"(?:/utf8)?>>\},\s*\{scram,\s*<<"([^"]*)">>,\s*<<"([^"]*)">>,\s*<<"([^"]*)">>,\s*(?:(\w+),\s*)?(\d+)\}\}`)
	ejabberdPlain = regexp.MustCompile(`\{passwd,\s*\{<<"((?:[^"\\]|\\.)*)"(?:/utf8)?>>,\s*<<"((?:[^"\\]|\\.)*)"(?:/utf8)?>>\},\s*<<`)
)

func parseEjabberdDump(f File) ([]Credential, error) {
	var out []Credential
	for _, m := range ejabberdSCRAM.FindAllSubmatch(f.Data, -1) {
		c := Credential{File: f.Name, User: string(m[1]), Host: string(m[2]),
			Fields: []string{"storedkey", "serverkey", "salt", "iterationcount"}}
		var err error
		if c.StoredKey, err = base64.StdEncoding.DecodeString(string(m[3])); err != nil {
			return nil, fmt.Errorf("evidence: %s: storedkey of %s: %w", f.Name, c.User, err)
		}
		if c.ServerKey, err = base64.StdEncoding.DecodeString(string(m[4])); err != nil {
			return nil, fmt.Errorf("evidence: %s: serverkey of %s: %w", f.Name, c.User, err)
		}
		if c.Salt, err = base64.StdEncoding.DecodeString(string(m[5])); err != nil {
			return nil, fmt.Errorf("evidence: %s: salt of %s: %w", f.Name, c.User, err)
		}
		switch string(m[6]) {
		case "", "sha":
			c.Hash = "SHA-1"
		case "sha256":
			c.Hash = "SHA-256"
		case "sha512":
			c.Hash = "SHA-512"
		default:
			c.Hash = string(m[6])
		}
		c.Iterations, _ = strconv.Atoi(string(m[7]))
		out = append(out, c)
	}
	for _, m := range ejabberdPlain.FindAllSubmatch(f.Data, -1) {
		out = append(out, Credential{File: f.Name, User: string(m[1]), Host: string(m[2]), Plaintext: true, Fields: []string{"password"}})
	}
	return out, nil
}

// --- reference ------------------------------------------------------------------

// referenceLine is one line of the reference server's credential export:
// "scram USER@HOST HASH ITERATIONS SALT_B64 STOREDKEY_B64 SERVERKEY_B64".
var referenceLine = regexp.MustCompile(`(?m)^scram (\S+)@(\S+) (SHA-1|SHA-256|SHA-512) (\d+) (\S+) (\S+) (\S+)$`)

func parseReferenceExport(f File) ([]Credential, error) {
	var out []Credential
	for _, m := range referenceLine.FindAllSubmatch(f.Data, -1) {
		c := Credential{File: f.Name, User: string(m[1]), Host: string(m[2]), Hash: string(m[3]),
			Fields: []string{"salt", "iterations", "stored_key", "server_key"}}
		c.Iterations, _ = strconv.Atoi(string(m[4]))
		var err error
		if c.Salt, err = base64.StdEncoding.DecodeString(string(m[5])); err != nil {
			return nil, fmt.Errorf("evidence: %s: salt: %w", f.Name, err)
		}
		if c.StoredKey, err = base64.StdEncoding.DecodeString(string(m[6])); err != nil {
			return nil, fmt.Errorf("evidence: %s: stored key: %w", f.Name, err)
		}
		if c.ServerKey, err = base64.StdEncoding.DecodeString(string(m[7])); err != nil {
			return nil, fmt.Errorf("evidence: %s: server key: %w", f.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// FormatReferenceLine writes one record in the reference export format
// parsed by ParseSCRAM(FormatReference, …).
func FormatReferenceLine(c Credential) string {
	b := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("scram %s@%s %s %d %s %s %s", c.User, c.Host, c.Hash, c.Iterations, b(c.Salt), b(c.StoredKey), b(c.ServerKey))
}
