package evidence

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
)

// EntropyEstimate is the randomness found in a set of URLs handed out for
// the same request (XEP-0363 upload slots for the same file name and size).
type EntropyEstimate struct {
	Samples int
	// Bits is the estimated randomness per URL.
	Bits float64
	// Positions describes each varying character position:
	// "segment 3 [0:32] hex: 128.0 bits".
	Detail []string
	// Duplicates counts URLs handed out twice.
	Duplicates int
}

// character classes, smallest first, and their sizes.
var charClasses = []struct {
	name string
	size int
	has  func(byte) bool
}{
	{"decimal", 10, func(c byte) bool { return c >= '0' && c <= '9' }},
	{"hex", 16, func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }},
	{"HEX", 16, func(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }},
	{"base32", 32, func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' }},
	{"BASE32", 32, func(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '2' && c <= '7' }},
	{"lower-alnum", 36, func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' }},
	{"alnum", 62, func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }},
	{"base64url", 64, func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
	}},
	{"base64", 64, func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '+' || c == '/'
	}},
	{"byte", 256, func(byte) bool { return true }},
}

// EstimateURLEntropy estimates how many bits of randomness each URL carries.
// URLs are split into path segments (and the query) and aligned by
// position; within every segment the character positions that vary across
// samples are found. The alphabet of a segment is the smallest common class
// (decimal, hex, base32, alphanumeric, base64, bytes) holding every
// character seen at its varying positions. A position whose number of
// distinct characters is at least half what a uniform draw from that class
// would show in this many samples is credited log2(class size); a position
// that varies less (a clock's high digits, a counter) is credited only the
// entropy its observed distribution shows. Constant positions (a UUID's
// version digit, a fixed prefix) count nothing. The estimate needs many
// samples: with n URLs no position is credited more than log2(n) unless its
// distinct count reaches the uniform expectation.
func EstimateURLEntropy(urls []string) (EntropyEstimate, error) {
	est := EntropyEstimate{Samples: len(urls)}
	if len(urls) < 16 {
		return est, fmt.Errorf("evidence: entropy: need at least 16 URLs, have %d", len(urls))
	}
	seen := map[string]bool{}
	var parts [][]string
	for _, u := range urls {
		if seen[u] {
			est.Duplicates++
		}
		seen[u] = true
		pu, err := url.Parse(u)
		if err != nil {
			return est, fmt.Errorf("evidence: entropy: %w", err)
		}
		segs := strings.Split(strings.Trim(pu.EscapedPath(), "/"), "/")
		if pu.RawQuery != "" {
			segs = append(segs, "?"+pu.RawQuery)
		}
		segs = append([]string{pu.Host}, segs...)
		parts = append(parts, segs)
	}
	nseg := len(parts[0])
	for _, p := range parts {
		nseg = min(nseg, len(p))
	}
	for s := range nseg {
		minLen := len(parts[0][s])
		for _, p := range parts {
			minLen = min(minLen, len(p[s]))
		}
		// Positions that vary.
		var varying []int
		for i := range minLen {
			c0 := parts[0][s][i]
			for _, p := range parts[1:] {
				if p[s][i] != c0 {
					varying = append(varying, i)
					break
				}
			}
		}
		if len(varying) == 0 {
			continue
		}
		class := charClasses[len(charClasses)-1]
	classes:
		for _, cl := range charClasses {
			for _, p := range parts {
				for _, i := range varying {
					if !cl.has(p[s][i]) {
						continue classes
					}
				}
			}
			class = cl
			break
		}
		n := float64(len(parts))
		k := float64(class.size)
		expectDistinct := k * (1 - math.Pow(1-1/k, n))
		segBits := 0.0
		for _, i := range varying {
			counts := map[byte]int{}
			for _, p := range parts {
				counts[p[s][i]]++
			}
			d := float64(len(counts))
			if d >= expectDistinct/2 {
				segBits += math.Log2(k)
				continue
			}
			// Fewer values than the class: the observed entropy with the
			// Miller–Madow correction for its small-sample bias, or log2
			// of the values seen when they occur uniformly (the last
			// character of base64 holding 2 or 4 bits).
			h, uniform := 0.0, true
			for _, c := range counts {
				q := float64(c) / n
				h -= q * math.Log2(q)
				if e := n / d; float64(c) < e/3 || float64(c) > 3*e {
					uniform = false
				}
			}
			h += (d - 1) / (2 * n * math.Ln2)
			if uniform && d > 1 {
				h = max(h, math.Log2(d))
			}
			segBits += min(h, math.Log2(d))
		}
		detail := fmt.Sprintf("segment %d: %d varying of %d characters, %s alphabet: %.1f bits",
			s, len(varying), minLen, class.name, segBits)
		if capBits, why, ok := uuidRandomBits(parts, s); ok && segBits > capBits {
			segBits = capBits
			detail += fmt.Sprintf(", capped at %.0f bits: %s", capBits, why)
		}
		est.Bits += segBits
		est.Detail = append(est.Detail, detail)
	}
	return est, nil
}

// uuidForm matches a UUID (RFC 9562 §4), with or without hyphens; the
// version is the first hex digit of the third group.
var uuidForm = regexp.MustCompile(`^(?i:[0-9a-f]{8}-?[0-9a-f]{4}-?([0-9a-f])[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12})$`)

// uuidRandomBits reports the randomness a UUID version guarantees when
// segment s of every sample is a UUID of one version. A statistical
// estimate credits the fast-moving low digits of a time-based UUID's
// timestamp as if they were drawn at random; the version says what is:
// RFC 9562 §5.7 lets UUIDv7 spend rand_a (12 bits) on a sub-millisecond
// clock or a counter (§6.2), so only rand_b's 62 bits are sure; versions 1
// and 6 carry a 14-bit clock sequence beside the time and the node (§5.1,
// §5.6); version 4 carries 122 random bits (§5.4). Versions 3, 5 and 8 say
// nothing about randomness and are left to the estimate.
func uuidRandomBits(parts [][]string, s int) (float64, string, bool) {
	version := byte(0)
	for _, p := range parts {
		m := uuidForm.FindStringSubmatch(p[s])
		if m == nil {
			return 0, "", false
		}
		v := strings.ToLower(m[1])[0]
		if version != 0 && v != version {
			return 0, "", false
		}
		version = v
	}
	switch version {
	case '4':
		return 122, "UUIDv4 carries 122 random bits (RFC 9562 §5.4)", true
	case '7':
		return 62, "UUIDv7: a 48-bit millisecond time, and of the 74 other bits only rand_b's 62 are sure to be random (RFC 9562 §5.7, §6.2)", true
	case '1', '6':
		return 14, "UUIDv" + string(version) + ": time and node, only the 14-bit clock sequence may be random (RFC 9562 §5.1, §5.6)", true
	}
	return 0, "", false
}
