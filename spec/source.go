package spec

import (
	"regexp"
	"strings"
	"unicode"
)

// Document is a source document prepared for verbatim quote checks and
// coverage: its text with whitespace normalised, its section headings and
// its sentences, all as byte ranges of the normalised text.
type Document struct {
	// Text is the whole document with every run of whitespace (line breaks
	// included) replaced by one space.
	Text      string
	Sentences []Sentence
	Headings  []Heading
}

// Heading is a section heading of the source document.
type Heading struct {
	Section    string // "2.1", or the whole heading line when unnumbered
	Title      string // the heading as written
	Start, End int    // byte range in Document.Text
	Line       int    // 1-based line in the source
}

// Sentence is one sentence of the source document.
type Sentence struct {
	Text       string
	Section    string // section of the closest heading above, "" before any
	Start, End int    // byte range in Document.Text
	Line       int    // 1-based line in the source
	Heading    bool   // the sentence is a section heading
}

// NormalizeSpace collapses every run of Unicode whitespace to one ASCII space
// and trims both ends.
func NormalizeSpace(s string) string {
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}

// numberedHeading matches "2.1 Offline Message Buffer" and "1. General …".
var numberedHeading = regexp.MustCompile(`^(\d+(?:\.\d+)*)\.?\s+\S`)

// sentenceEnd matches the end of a sentence inside a line: terminal
// punctuation (optionally closed by a quote, bracket or asterisks) followed
// by space.
var sentenceEnd = regexp.MustCompile(`[.!?]["'’”)*]*\s+`)

// ParseDocument splits text into headings and sentences. Lines that are
// numbered headings, or that equal one of extraHeadings (unnumbered section
// names such as "Terms of Service"), are headings; every other line is split
// into sentences. Leading list markers ("- ", "- - ", "a. ") are kept in the
// text but do not start a sentence of their own.
func ParseDocument(text string, extraHeadings []string) *Document {
	d := &Document{}
	var b strings.Builder
	section := ""
	for i, raw := range strings.Split(text, "\n") {
		line := NormalizeSpace(raw)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		start := b.Len()
		b.WriteString(line)
		if sec, ok := headingSection(line, extraHeadings); ok {
			section = sec
			d.Headings = append(d.Headings, Heading{Section: sec, Title: line, Start: start, End: b.Len(), Line: i + 1})
			d.Sentences = append(d.Sentences, Sentence{Text: line, Section: sec, Start: start, End: b.Len(), Line: i + 1, Heading: true})
			continue
		}
		for _, r := range splitSentences(line) {
			d.Sentences = append(d.Sentences, Sentence{
				Text: line[r[0]:r[1]], Section: section,
				Start: start + r[0], End: start + r[1], Line: i + 1,
			})
		}
	}
	d.Text = b.String()
	return d
}

func headingSection(line string, extra []string) (string, bool) {
	for _, h := range extra {
		if line == NormalizeSpace(h) {
			return line, true
		}
	}
	if m := numberedHeading.FindStringSubmatch(line); m != nil && len(line) < 80 && !strings.ContainsAny(line[len(m[0]):], ".;:,") {
		return m[1], true
	}
	return "", false
}

// splitSentences returns the byte ranges of the sentences of one line.
func splitSentences(line string) [][2]int {
	var out [][2]int
	start := 0
	for _, m := range sentenceEnd.FindAllStringIndex(line, -1) {
		end := m[1]
		// "e.g. we" and "i.e. in" are not sentence ends: the next word is
		// lower case.
		if end < len(line) {
			if r := rune(line[end]); unicode.IsLower(r) {
				continue
			}
		}
		if s := strings.TrimSpace(line[start:end]); s != "" && !isListMarker(s) {
			out = append(out, [2]int{start, start + len(strings.TrimRight(line[start:end], " "))})
			start = end
		}
	}
	if s := strings.TrimSpace(line[start:]); s != "" {
		out = append(out, [2]int{start, len(line)})
	}
	return out
}

// isListMarker reports whether s is only a list marker such as "a." or "1.".
func isListMarker(s string) bool {
	s = strings.TrimLeft(s, "- ")
	return len(s) <= 3 && strings.HasSuffix(s, ".")
}

// Find returns the byte range of quote (whitespace-normalised) in the
// document, or ok=false.
func (d *Document) Find(quote string) (start, end int, ok bool) {
	q := NormalizeSpace(quote)
	if q == "" {
		return 0, 0, false
	}
	i := strings.Index(d.Text, q)
	if i < 0 {
		return 0, 0, false
	}
	return i, i + len(q), true
}

// SectionAt returns the section of the closest heading at or before offset.
func (d *Document) SectionAt(offset int) string {
	sec := ""
	for _, h := range d.Headings {
		if h.Start > offset {
			break
		}
		sec = h.Section
	}
	return sec
}

// HasSection reports whether the document has a heading for section.
func (d *Document) HasSection(section string) bool {
	for _, h := range d.Headings {
		if h.Section == section {
			return true
		}
	}
	return false
}

// SectionRange returns the byte range of a section: from its heading to the
// next heading that is not one of its subsections.
func (d *Document) SectionRange(section string) (start, end int, ok bool) {
	for i, h := range d.Headings {
		if h.Section != section {
			continue
		}
		end = len(d.Text)
		for _, n := range d.Headings[i+1:] {
			if !strings.HasPrefix(n.Section, section+".") {
				end = n.Start
				break
			}
		}
		return h.Start, end, true
	}
	return 0, 0, false
}

// Closest returns the sentence sharing the most words with text, for hints
// when a quote is not verbatim in the document. ok is false when no sentence
// shares at least half of text's words.
func (d *Document) Closest(text string) (Sentence, bool) {
	words := wordSet(text)
	best, bestScore := Sentence{}, 0
	for _, s := range d.Sentences {
		score := 0
		for w := range wordSet(s.Text) {
			if words[w] {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = s, score
		}
	}
	return best, bestScore*2 >= len(words) && bestScore > 0
}

func wordSet(s string) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		set[w] = true
	}
	return set
}
