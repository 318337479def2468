package evidence

import (
	"fmt"
	"math"
	"net/url"
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
		est.Bits += segBits
		est.Detail = append(est.Detail, fmt.Sprintf("segment %d: %d varying of %d characters, %s alphabet: %.1f bits",
			s, len(varying), minLen, class.name, segBits))
	}
	return est, nil
}
