package spec

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParamType is the type of a claim parameter.
type ParamType int

// Parameter types.
const (
	// TypeDuration: "7d", "14d", "36h", "90m", "30s", "2w"; or combined "1d12h".
	TypeDuration ParamType = iota + 1
	// TypeTLSVersion: "1.0", "1.1", "1.2", "1.3".
	TypeTLSVersion
	// TypeCount: a non-negative integer within [Min, Max].
	TypeCount
	// TypeHash: a hash name, "SHA-1", "SHA-256" or "SHA-512".
	TypeHash
	// TypeFieldList: a list of names, each from the spec's Allowed set.
	TypeFieldList
)

func (t ParamType) String() string {
	switch t {
	case TypeDuration:
		return "duration"
	case TypeTLSVersion:
		return "TLS version"
	case TypeCount:
		return "count"
	case TypeHash:
		return "hash name"
	case TypeFieldList:
		return "field list"
	}
	return "unknown"
}

// Example returns a value of the type for error hints.
func (t ParamType) Example() string {
	switch t {
	case TypeDuration:
		return `7d, 36h, 90m or 30s`
	case TypeTLSVersion:
		return `1.2 or 1.3`
	case TypeCount:
		return `an integer such as 5`
	case TypeHash:
		return `SHA-1 or SHA-256`
	case TypeFieldList:
		return `a list such as [username, password]`
	}
	return ""
}

// ParamSpec describes one parameter of a claim kind.
type ParamSpec struct {
	Name     string
	Type     ParamType
	Required bool
	// Default is the value, written as in a policy file, used when the
	// parameter is absent. Ignored when Required. Empty (for a type other
	// than a field list) makes the parameter optional: absent from
	// Params unless the policy gives it (Params.Has).
	Default string
	// Min and Max bound TypeCount values (inclusive; zero Max means none).
	Min, Max int
	// MinDuration and MaxDuration bound TypeDuration values (inclusive).
	MinDuration, MaxDuration string
	// Allowed lists the names a TypeFieldList may hold.
	Allowed []string
	Doc     string
}

// Hash names accepted by TypeHash.
const (
	HashSHA1   = "SHA-1"
	HashSHA256 = "SHA-256"
	HashSHA512 = "SHA-512"
)

var hashNames = []string{HashSHA1, HashSHA256, HashSHA512}

// Value is a parsed, typed parameter value.
type Value struct {
	Type     ParamType
	Duration time.Duration
	TLS      uint16 // crypto/tls version constant
	Count    int
	Hash     string
	Fields   []string
}

// String formats the value as it would be written in a policy file.
func (v Value) String() string {
	switch v.Type {
	case TypeDuration:
		return FormatDuration(v.Duration)
	case TypeTLSVersion:
		return TLSVersionName(v.TLS)
	case TypeCount:
		return strconv.Itoa(v.Count)
	case TypeHash:
		return v.Hash
	case TypeFieldList:
		return "[" + strings.Join(v.Fields, ", ") + "]"
	}
	return ""
}

// MarshalJSON encodes the value as its policy-file form, except counts which
// are numbers and field lists which are arrays.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Type {
	case TypeCount:
		return []byte(strconv.Itoa(v.Count)), nil
	case TypeFieldList:
		parts := make([]string, len(v.Fields))
		for i, f := range v.Fields {
			parts[i] = strconv.Quote(f)
		}
		return []byte("[" + strings.Join(parts, ",") + "]"), nil
	}
	return []byte(strconv.Quote(v.String())), nil
}

// errors returned by the parameter parsers; the loader adds position and hint.
var (
	errBadDuration = errors.New("not a duration")
	errBadTLS      = errors.New("not a TLS version")
	errBadHash     = errors.New("not a supported hash")
)

var durationUnits = []struct {
	suffix string
	d      time.Duration
}{
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
}

// ParseDuration parses a policy duration: one or more integer-unit pairs with
// units w, d, h, m, s ("7d", "36h", "1d12h", "90m").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errBadDuration
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) {
			return 0, errBadDuration
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > 1<<31 {
			return 0, errBadDuration
		}
		unit := time.Duration(0)
		for _, u := range durationUnits {
			if s[i:i+1] == u.suffix {
				unit = u.d
				break
			}
		}
		if unit == 0 {
			return 0, errBadDuration
		}
		total += time.Duration(n) * unit
		s = s[i+1:]
	}
	return total, nil
}

// FormatDuration writes d in the largest units that express it exactly, the
// inverse of ParseDuration ("168h" → "7d", "36h" → "1d12h").
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range durationUnits[1:] { // days and below; weeks read oddly
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.suffix)
			d -= n * u.d
		}
	}
	if d > 0 { // sub-second remainder
		b.WriteString(d.String())
	}
	return b.String()
}

var tlsVersions = []struct {
	name string
	v    uint16
}{
	{"1.0", tls.VersionTLS10},
	{"1.1", tls.VersionTLS11},
	{"1.2", tls.VersionTLS12},
	{"1.3", tls.VersionTLS13},
}

// ParseTLSVersion parses "1.0" … "1.3" (an optional "TLS" prefix is allowed)
// into a crypto/tls version constant.
func ParseTLSVersion(s string) (uint16, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "TLS"))
	s = strings.TrimPrefix(s, "V")
	for _, v := range tlsVersions {
		if s == v.name {
			return v.v, nil
		}
	}
	return 0, errBadTLS
}

// TLSVersionName returns "1.2" for tls.VersionTLS12 and so on.
func TLSVersionName(v uint16) string {
	for _, t := range tlsVersions {
		if t.v == v {
			return t.name
		}
	}
	return fmt.Sprintf("0x%04x", v)
}

// TLSVersions returns every TLS version xmppcheck knows, oldest first.
func TLSVersions() []uint16 {
	out := make([]uint16, len(tlsVersions))
	for i, t := range tlsVersions {
		out[i] = t.v
	}
	return out
}

// ParseHash normalises a hash name ("sha1", "SHA1", "SHA-1" → "SHA-1").
func ParseHash(s string) (string, error) {
	norm := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", ""))
	for _, h := range hashNames {
		if strings.ReplaceAll(h, "-", "") == norm {
			return h, nil
		}
	}
	return "", errBadHash
}

// parseScalar parses a scalar value of type t and checks it against p's
// bounds. It returns a message suitable for a lint diagnostic on failure.
func (p ParamSpec) parseScalar(s string) (Value, string) {
	v := Value{Type: p.Type}
	switch p.Type {
	case TypeDuration:
		d, err := ParseDuration(s)
		if err != nil {
			return v, fmt.Sprintf("parameter %q: %q is not a duration", p.Name, s)
		}
		v.Duration = d
		if p.MinDuration != "" {
			if lo, _ := ParseDuration(p.MinDuration); d < lo {
				return v, fmt.Sprintf("parameter %q: %s is below the minimum %s", p.Name, s, p.MinDuration)
			}
		}
		if p.MaxDuration != "" {
			if hi, _ := ParseDuration(p.MaxDuration); d > hi {
				return v, fmt.Sprintf("parameter %q: %s is above the maximum %s", p.Name, s, p.MaxDuration)
			}
		}
	case TypeTLSVersion:
		t, err := ParseTLSVersion(s)
		if err != nil {
			return v, fmt.Sprintf("parameter %q: %q is not a TLS version", p.Name, s)
		}
		v.TLS = t
	case TypeCount:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return v, fmt.Sprintf("parameter %q: %q is not a count", p.Name, s)
		}
		v.Count = n
		if n < p.Min || (p.Max > 0 && n > p.Max) {
			return v, fmt.Sprintf("parameter %q: %d is out of range [%d, %d]", p.Name, n, p.Min, p.Max)
		}
	case TypeHash:
		h, err := ParseHash(s)
		if err != nil {
			return v, fmt.Sprintf("parameter %q: %q is not a supported hash (%s)", p.Name, s, strings.Join(hashNames, ", "))
		}
		v.Hash = h
	default:
		return v, fmt.Sprintf("parameter %q: expected a %s", p.Name, p.Type)
	}
	return v, ""
}

// parseFields checks a field list against p.Allowed.
func (p ParamSpec) parseFields(fields []string) (Value, string) {
	v := Value{Type: TypeFieldList, Fields: []string{}}
	for _, f := range fields {
		if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, f) {
			return v, fmt.Sprintf("parameter %q: %q is not one of %s", p.Name, f, strings.Join(p.Allowed, ", "))
		}
		if slices.Contains(v.Fields, f) {
			return v, fmt.Sprintf("parameter %q: %q is listed twice", p.Name, f)
		}
		v.Fields = append(v.Fields, f)
	}
	return v, ""
}

// DefaultValue parses the spec's default. It panics on a bad catalogue
// default, which TestCatalogueDefaults rules out.
func (p ParamSpec) DefaultValue() Value {
	if p.Type == TypeFieldList {
		inner := strings.Trim(p.Default, "[] ")
		var fields []string
		if inner != "" {
			for _, f := range strings.Split(inner, ",") {
				fields = append(fields, strings.TrimSpace(f))
			}
		}
		v, msg := p.parseFields(fields)
		if msg != "" {
			panic("spec: bad catalogue default: " + msg)
		}
		return v
	}
	v, msg := p.parseScalar(p.Default)
	if msg != "" {
		panic("spec: bad catalogue default: " + msg)
	}
	return v
}

// Params holds the typed parameters of one claim, defaults filled in.
type Params map[string]Value

// Has reports whether the parameter is set (given, or by a default).
func (p Params) Has(name string) bool { _, ok := p[name]; return ok }

// Duration returns the duration parameter name, or zero.
func (p Params) Duration(name string) time.Duration { return p[name].Duration }

// TLSVersion returns the TLS version parameter name as a crypto/tls constant.
func (p Params) TLSVersion(name string) uint16 { return p[name].TLS }

// Count returns the count parameter name.
func (p Params) Count(name string) int { return p[name].Count }

// Hash returns the hash parameter name ("SHA-1").
func (p Params) Hash(name string) string { return p[name].Hash }

// Fields returns the field-list parameter name.
func (p Params) Fields(name string) []string { return slices.Clone(p[name].Fields) }
