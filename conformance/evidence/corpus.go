package evidence

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// ErrControlMissing is returned by [Corpus.Scan] when the positive control
// is not found: the scan cannot see what the server stores, so a negative
// result would prove nothing.
var ErrControlMissing = errors.New("evidence: positive control not found")

// ErrTooLarge is returned when a corpus would exceed its size limit.
var ErrTooLarge = errors.New("evidence: corpus too large")

// DefaultLimit bounds the bytes a corpus holds (logs and data together).
const DefaultLimit = 512 << 20

// File is one artifact of a corpus: a log, container output, or a file of
// the data directory.
type File struct {
	// Name says where the bytes come from ("log:/var/log/prosody/prosody.log",
	// "data:localhost/accounts/u.dat", "stdout").
	Name string
	Data []byte
}

// Corpus is the set of artifacts a scan searches.
type Corpus struct {
	Files []File
	limit int64
	size  int64
}

// NewCorpus returns an empty corpus holding at most limit bytes (0 means
// DefaultLimit).
func NewCorpus(limit int64) *Corpus {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Corpus{limit: limit}
}

// Size is the number of bytes in the corpus.
func (c *Corpus) Size() int64 { return c.size }

// Names lists the artifacts in the corpus.
func (c *Corpus) Names() []string {
	out := make([]string, len(c.Files))
	for i, f := range c.Files {
		out[i] = f.Name
	}
	return out
}

// Add appends an artifact.
func (c *Corpus) Add(name string, data []byte) error {
	if c.limit == 0 {
		c.limit = DefaultLimit
	}
	if c.size+int64(len(data)) > c.limit {
		return fmt.Errorf("evidence: add %s: %w (limit %d bytes)", name, ErrTooLarge, c.limit)
	}
	c.size += int64(len(data))
	c.Files = append(c.Files, File{Name: name, Data: data})
	return nil
}

// AddDir adds every regular file under root (an OS directory), named
// prefix + its slash-separated path relative to root.
func (c *Corpus) AddDir(root, prefix string) error {
	return c.AddFS(os.DirFS(root), ".", prefix)
}

// AddFS adds every regular file under dir of fsys.
func (c *Corpus) AddFS(fsys fs.FS, dir, prefix string) error {
	var names []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("evidence: walk %s: %w", prefix, err)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return fmt.Errorf("evidence: read %s: %w", n, err)
		}
		if err := c.Add(prefix+n, b); err != nil {
			return err
		}
	}
	return nil
}

// AddTar adds every regular file of a tar stream (as `docker cp` and the
// Docker API's archive endpoint produce), named prefix + its path.
func (c *Corpus) AddTar(r io.Reader, prefix string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("evidence: read tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if c.size+h.Size > c.limit {
			return fmt.Errorf("evidence: add %s: %w (limit %d bytes)", h.Name, ErrTooLarge, c.limit)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("evidence: read %s: %w", h.Name, err)
		}
		if err := c.Add(prefix+path.Clean(h.Name), b); err != nil {
			return err
		}
	}
}

// Merge returns a corpus holding the artifacts of every given corpus.
func Merge(cs ...*Corpus) *Corpus {
	out := NewCorpus(0)
	for _, c := range cs {
		if c == nil {
			continue
		}
		out.Files = append(out.Files, c.Files...)
		out.size += c.size
	}
	return out
}

// Form is one encoding of a needle: its name ("dotted", "base64") and bytes.
type Form struct {
	Name  string
	Bytes []byte
}

// Needle is something a scan looks for, in every form it may be stored in.
type Needle struct {
	// What describes the needle for reports ("client address 127.0.0.1").
	What  string
	Forms []Form
	// Secret masks the match in hit contexts (passwords).
	Secret bool
}

// Literal is a needle of one plain-text form.
func Literal(what, s string) Needle {
	return Needle{What: what, Forms: []Form{{Name: "plain", Bytes: []byte(s)}}}
}

// Hit is one occurrence of a needle.
type Hit struct {
	File   string `json:"file"`
	Offset int    `json:"offset"`
	// Line is the 1-based line number for text artifacts.
	Line int    `json:"line"`
	Form string `json:"form"`
	// Context is the text around the match, printable, with the match
	// itself masked for secret needles.
	Context string `json:"context"`
	// LineText is the whole line holding the match (masked likewise),
	// used to recognise events a claim allows (failed logins).
	LineText string `json:"-"`
}

func (h Hit) String() string {
	return fmt.Sprintf("%s:%d (offset %d, %s form): %s", h.File, h.Line, h.Offset, h.Form, h.Context)
}

// maxHitsPerFile bounds the hits reported per artifact and needle.
const maxHitsPerFile = 20

// Find returns every occurrence of any form of n in the corpus.
func (c *Corpus) Find(n Needle) []Hit {
	var hits []Hit
	for _, f := range c.Files {
		hits = append(hits, findIn(f, n)...)
	}
	return hits
}

func findIn(f File, n Needle) []Hit {
	var hits []Hit
	seen := map[int]bool{}
	for _, form := range n.Forms {
		if len(form.Bytes) == 0 {
			continue
		}
		data := f.Data
		for off := 0; len(hits) < maxHitsPerFile; {
			i := bytes.Index(data[off:], form.Bytes)
			if i < 0 {
				break
			}
			at := off + i
			off = at + 1
			if seen[at] {
				continue
			}
			seen[at] = true
			hits = append(hits, Hit{
				File: f.Name, Offset: at, Line: 1 + bytes.Count(f.Data[:at], []byte{'\n'}),
				Form:     form.Name,
				Context:  excerpt(f.Data, at, len(form.Bytes), 40, n.Secret, form.Name),
				LineText: lineOf(f.Data, at, len(form.Bytes), n.Secret, form.Name),
			})
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].Offset < hits[j].Offset })
	return hits
}

// Scan looks for the control first and then for each needle. When the
// control is not found it returns ErrControlMissing: the corpus does not
// show what the server certainly stored, so the absence of the needles
// proves nothing.
func (c *Corpus) Scan(control Needle, needles ...Needle) ([]Hit, error) {
	if len(c.Find(control)) == 0 {
		return nil, fmt.Errorf("%w: %s not found in %d artifacts (%d bytes): %s",
			ErrControlMissing, control.What, len(c.Files), c.size, strings.Join(c.Names(), ", "))
	}
	var hits []Hit
	for _, n := range needles {
		hits = append(hits, c.Find(n)...)
	}
	return hits, nil
}

// excerpt renders data around [at, at+n) as printable text, masking the
// match when secret.
func excerpt(data []byte, at, n, radius int, secret bool, form string) string {
	lo, hi := max(0, at-radius), min(len(data), at+n+radius)
	var b strings.Builder
	b.WriteString(printable(data[lo:at]))
	if secret {
		b.WriteString("«" + form + " secret»")
	} else {
		b.WriteString(printable(data[at : at+n]))
	}
	b.WriteString(printable(data[at+n : hi]))
	return b.String()
}

func lineOf(data []byte, at, n int, secret bool, form string) string {
	start := bytes.LastIndexByte(data[:at], '\n') + 1
	end := bytes.IndexByte(data[at+n:], '\n')
	if end < 0 {
		end = len(data)
	} else {
		end += at + n
	}
	if end-start > 2000 { // binary data: bound the "line"
		return excerpt(data, at, n, 200, secret, form)
	}
	return excerpt(data[start:end], at-start, n, end-start, secret, form)
}

// printable escapes bytes that are not printable ASCII or valid UTF-8 text.
func printable(b []byte) string {
	var s strings.Builder
	for len(b) > 0 {
		r, size := rune(b[0]), 1
		if b[0] >= 0x80 {
			r, size = utf8.DecodeRune(b)
		}
		switch {
		case r == '\n':
			s.WriteString(`\n`)
		case r == '\t':
			s.WriteString(`\t`)
		case r == 0xFFFD && size == 1, r < 0x20, r == 0x7f:
			fmt.Fprintf(&s, `\x%02x`, b[0])
		default:
			s.Write(b[:size])
		}
		b = b[size:]
	}
	return s.String()
}

// RelPath returns p relative to root with forward slashes, for artifact
// names.
func RelPath(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}
