package spec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Diagnostic is one problem found in a policy file.
type Diagnostic struct {
	File    string
	Line    int
	Column  int
	Message string
	Hint    string
}

func (d Diagnostic) String() string {
	s := fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, d.Message)
	if d.Hint != "" {
		s += " (hint: " + d.Hint + ")"
	}
	return s
}

// Diagnostics is every problem found in a policy file. It is the error Load
// returns when a file is invalid.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// ErrSource is wrapped by errors about a source document that cannot be read.
var ErrSource = errors.New("spec: source document unreadable")

// LoadOption configures Load.
type LoadOption func(*loadConfig)

type loadConfig struct {
	sourceText *string
	// readSource reads a source path relative to the policy file; nil means
	// from the policy's fs.FS.
	readSource func(rel string) ([]byte, error)
	httpClient *http.Client
	ctx        context.Context
}

// WithSourceText checks quotes against text instead of reading the file's
// source document.
func WithSourceText(text string) LoadOption {
	return func(c *loadConfig) { c.sourceText = &text }
}

// WithHTTPClient sets the client used to fetch a source given as a URL.
func WithHTTPClient(cl *http.Client) LoadOption {
	return func(c *loadConfig) { c.httpClient = cl }
}

// WithContext bounds the fetch of a source given as a URL.
func WithContext(ctx context.Context) LoadOption {
	return func(c *loadConfig) { c.ctx = ctx }
}

// Load reads and validates the policy file at path (on the OS file system).
// When the file is invalid the error is Diagnostics listing every problem.
func Load(file string, opts ...LoadOption) (*Policy, error) {
	dir, base := filepath.Split(file)
	if dir == "" {
		dir = "."
	}
	// The source may live outside the policy's directory ("../doc.txt"),
	// which an fs.FS rooted there cannot reach: read it from the OS.
	readOS := func(c *loadConfig) {
		c.readSource = func(rel string) ([]byte, error) {
			if filepath.IsAbs(rel) {
				return os.ReadFile(rel)
			}
			return os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		}
	}
	p, err := LoadFS(os.DirFS(dir), base, append([]LoadOption{readOS}, opts...)...)
	if p != nil {
		p.File = file
	}
	var ds Diagnostics
	if errors.As(err, &ds) {
		for i := range ds {
			ds[i].File = file
		}
	}
	return p, err
}

// LoadFS reads and validates the policy file name in fsys. A relative source
// path is resolved against the policy file's directory within fsys.
func LoadFS(fsys fs.FS, name string, opts ...LoadOption) (*Policy, error) {
	cfg := loadConfig{httpClient: &http.Client{Timeout: 30 * time.Second}, ctx: context.Background()}
	for _, o := range opts {
		o(&cfg)
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("spec: read policy: %w", err)
	}
	l := &loader{file: name}
	p := l.parse(data)
	if p == nil {
		return nil, l.diags
	}
	p.File = name
	switch {
	case cfg.sourceText != nil:
		p.SourceText = *cfg.sourceText
	case p.Source == "":
		// reported by parse
	case strings.HasPrefix(p.Source, "http://") || strings.HasPrefix(p.Source, "https://"):
		text, err := fetchSource(cfg.ctx, cfg.httpClient, p.Source)
		if err != nil {
			l.add(l.sourcePos, fmt.Sprintf("source %s: %v", p.Source, err), "check the URL, or save the document beside the policy file and name it in source: as a relative path")
		} else {
			p.SourceText = text
		}
	default:
		read := cfg.readSource
		if read == nil {
			read = func(rel string) ([]byte, error) { return fs.ReadFile(fsys, path.Join(path.Dir(name), rel)) }
		}
		b, err := read(p.Source)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			l.add(l.sourcePos, fmt.Sprintf("source %q cannot be read: %v", p.Source, err), "the path is relative to the policy file")
		} else {
			p.SourceText = string(b)
		}
	}
	if p.SourceText != "" {
		l.checkQuotes(p)
	}
	if len(l.diags) > 0 {
		slices.SortStableFunc(l.diags, func(a, b Diagnostic) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return p, l.diags
	}
	return p, nil
}

func fetchSource(ctx context.Context, cl *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSource, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: HTTP %s", ErrSource, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSource, err)
	}
	return string(b), nil
}

// loader walks the YAML node tree, collecting every problem.
type loader struct {
	file      string
	diags     Diagnostics
	sourcePos Position
}

func (l *loader) add(pos Position, msg, hint string) {
	l.diags = append(l.diags, Diagnostic{File: l.file, Line: pos.Line, Column: pos.Column, Message: msg, Hint: hint})
}

func posOf(n *yaml.Node) Position { return Position{Line: n.Line, Column: n.Column} }

// field is one allowed key of a mapping.
type field struct {
	name     string
	required bool
	parse    func(*yaml.Node)
}

// mapping checks that n is a mapping holding only the given keys, calls each
// field's parse with its value, and reports missing required keys at n.
func (l *loader) mapping(n *yaml.Node, what string, fields ...field) {
	if n.Kind != yaml.MappingNode {
		l.add(posOf(n), fmt.Sprintf("%s must be a mapping", what), "")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		idx := slices.IndexFunc(fields, func(f field) bool { return f.name == k.Value })
		if idx < 0 {
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.name
			}
			l.add(posOf(k), fmt.Sprintf("unknown key %q in %s", k.Value, what), "known keys: "+strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			l.add(posOf(k), fmt.Sprintf("key %q given twice in %s", k.Value, what), "")
			continue
		}
		seen[k.Value] = true
		fields[idx].parse(v)
	}
	for _, f := range fields {
		if f.required && !seen[f.name] {
			l.add(posOf(n), fmt.Sprintf("%s lacks required key %q", what, f.name), "")
		}
	}
}

func (l *loader) str(dst *string, what string) func(*yaml.Node) {
	return func(n *yaml.Node) {
		if n.Kind != yaml.ScalarNode {
			l.add(posOf(n), fmt.Sprintf("%s must be a string", what), "")
			return
		}
		*dst = n.Value
	}
}

func (l *loader) seq(n *yaml.Node, what string, each func(*yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		l.add(posOf(n), fmt.Sprintf("%s must be a list", what), "")
		return
	}
	for _, c := range n.Content {
		each(c)
	}
}

func (l *loader) parse(data []byte) *Policy {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, col := 1, 1
		var te *yaml.TypeError
		msg := err.Error()
		if !errors.As(err, &te) {
			// yaml.v3 syntax errors read "yaml: line N: message".
			if _, err2 := fmt.Sscanf(msg, "yaml: line %d:", &line); err2 == nil {
				if _, rest, ok := strings.Cut(msg, fmt.Sprintf("line %d: ", line)); ok {
					msg = rest
				}
			}
		}
		l.add(Position{line, col}, "invalid YAML: "+strings.TrimPrefix(msg, "yaml: "), "")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		l.add(Position{1, 1}, "empty policy file", "start with `policy: NAME` and `claims:`")
		return nil
	}
	root := doc.Content[0]
	p := &Policy{}
	var updated string
	l.mapping(root, "policy file",
		field{"policy", true, l.str(&p.Name, "policy")},
		field{"updated", false, func(n *yaml.Node) {
			l.str(&updated, "updated")(n)
			t, err := time.Parse(time.DateOnly, updated)
			if err != nil {
				l.add(posOf(n), fmt.Sprintf("updated %q is not a date", updated), "write it as YYYY-MM-DD")
				return
			}
			p.Updated = t
		}},
		field{"source", true, func(n *yaml.Node) {
			l.sourcePos = posOf(n)
			l.str(&p.Source, "source")(n)
		}},
		field{"claims", true, func(n *yaml.Node) {
			l.seq(n, "claims", func(c *yaml.Node) {
				if cl, ok := l.claim(c, p); ok {
					p.Claims = append(p.Claims, cl)
				}
			})
		}},
		field{"statements", false, func(n *yaml.Node) {
			l.seq(n, "statements", func(c *yaml.Node) {
				s := Statement{Pos: posOf(c)}
				l.mapping(c, "statement", append(l.quoteFields(&s.Quote, true),
					field{"reason", true, l.str(&s.Reason, "reason")})...)
				p.Statements = append(p.Statements, s)
			})
		}},
		field{"conflicts", false, func(n *yaml.Node) {
			l.seq(n, "conflicts", func(c *yaml.Node) { p.Conflicts = append(p.Conflicts, l.conflict(c)) })
		}},
		field{"boilerplate", false, func(n *yaml.Node) {
			l.seq(n, "boilerplate", func(c *yaml.Node) {
				b := Boilerplate{Pos: posOf(c)}
				l.mapping(c, "boilerplate entry", append(l.quoteFields(&b.Quote, false),
					field{"reason", true, l.str(&b.Reason, "reason")})...)
				p.Boilerplate = append(p.Boilerplate, b)
			})
		}},
	)
	l.checkConflicts(p)
	return p
}

// quoteFields are the section and quote keys shared by claims, statements,
// conflicts and boilerplate.
func (l *loader) quoteFields(q *Quote, quoteRequired bool) []field {
	return []field{
		{"section", true, l.str(&q.Section, "section")},
		{"quote", quoteRequired, func(n *yaml.Node) {
			q.Pos = posOf(n)
			l.str(&q.Text, "quote")(n)
		}},
	}
}

func (l *loader) claim(n *yaml.Node, p *Policy) (Claim, bool) {
	c := Claim{Pos: posOf(n)}
	var idNode, paramsNode *yaml.Node
	l.mapping(n, "claim", append(l.quoteFields(&c.Quote, true),
		field{"id", true, func(v *yaml.Node) { idNode = v; l.str((*string)(&c.ID), "id")(v) }},
		field{"params", false, func(v *yaml.Node) { paramsNode = v }},
		field{"notes", false, l.str(&c.Notes, "notes")},
		field{"also", false, func(v *yaml.Node) {
			l.seq(v, "also", func(a *yaml.Node) {
				var q Quote
				l.mapping(a, "also entry", l.quoteFields(&q, true)...)
				c.Also = append(c.Also, q)
			})
		}},
	)...)
	if idNode == nil {
		return c, false
	}
	kind, ok := Lookup(c.ID)
	if !ok {
		l.add(posOf(idNode), fmt.Sprintf("unknown claim id %q", c.ID), fmt.Sprintf("did you mean %q?", Nearest(string(c.ID))))
		return c, false
	}
	if p.Has(c.ID) {
		first, _ := p.Claim(c.ID)
		l.add(posOf(idNode), fmt.Sprintf("duplicate claim %q", c.ID), fmt.Sprintf("first given at line %d; add further sentences under `also:`", first.Pos.Line))
		return c, false
	}
	c.Params = l.params(kind, paramsNode, posOf(idNode))
	return c, true
}

func (l *loader) params(kind Kind, n *yaml.Node, claimPos Position) Params {
	out := Params{}
	given := map[string]*yaml.Node{}
	if n != nil {
		if n.Kind != yaml.MappingNode {
			l.add(posOf(n), fmt.Sprintf("params of %s must be a mapping", kind.ID), "")
		} else {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if _, ok := kind.Param(k.Value); !ok {
					hint := fmt.Sprintf("%s takes no parameters", kind.ID)
					if len(kind.Params) > 0 {
						names := make([]string, len(kind.Params))
						for j, ps := range kind.Params {
							names[j] = ps.Name
						}
						hint = fmt.Sprintf("%s takes: %s", kind.ID, strings.Join(names, ", "))
					}
					l.add(posOf(k), fmt.Sprintf("unknown parameter %q for %s", k.Value, kind.ID), hint)
					continue
				}
				given[k.Value] = v
			}
		}
	}
	for _, ps := range kind.Params {
		v, ok := given[ps.Name]
		if !ok {
			if ps.Required {
				l.add(claimPos, fmt.Sprintf("%s lacks required parameter %q (a %s)", kind.ID, ps.Name, ps.Type), "e.g. "+ps.Name+": "+firstExample(ps.Type))
				continue
			}
			if ps.Default == "" && ps.Type != TypeFieldList {
				continue // optional without a default: absent unless given
			}
			out[ps.Name] = ps.DefaultValue()
			continue
		}
		var val Value
		var msg string
		if ps.Type == TypeFieldList {
			if v.Kind != yaml.SequenceNode {
				msg = fmt.Sprintf("parameter %q: expected a %s", ps.Name, ps.Type)
			} else {
				var fields []string
				for _, f := range v.Content {
					fields = append(fields, f.Value)
				}
				val, msg = ps.parseFields(fields)
			}
		} else if v.Kind != yaml.ScalarNode {
			msg = fmt.Sprintf("parameter %q: expected a %s", ps.Name, ps.Type)
		} else {
			val, msg = ps.parseScalar(v.Value)
		}
		if msg != "" {
			l.add(posOf(v), msg, ps.Doc+"; use "+ps.Type.Example())
			continue
		}
		out[ps.Name] = val
	}
	return out
}

func firstExample(t ParamType) string {
	ex, _, _ := strings.Cut(t.Example(), " or ")
	ex, _, _ = strings.Cut(ex, ", ")
	return strings.TrimPrefix(strings.TrimPrefix(ex, "a list such as "), "an integer such as ")
}

func (l *loader) conflict(n *yaml.Node) Conflict {
	c := Conflict{Pos: posOf(n)}
	l.mapping(n, "conflict",
		field{"about", true, l.str(&c.About, "about")},
		field{"quotes", true, func(v *yaml.Node) {
			l.seq(v, "quotes", func(q *yaml.Node) {
				var qq Quote
				l.mapping(q, "conflict quote", l.quoteFields(&qq, true)...)
				c.Quotes = append(c.Quotes, qq)
			})
		}},
		field{"tested", true, l.str(&c.Tested, "tested")},
		field{"claims", false, func(v *yaml.Node) {
			l.seq(v, "claims", func(id *yaml.Node) { c.Claims = append(c.Claims, ClaimID(id.Value)) })
		}},
		field{"reason", true, l.str(&c.Reason, "reason")},
	)
	return c
}

func (l *loader) checkConflicts(p *Policy) {
	for _, c := range p.Conflicts {
		if len(c.Quotes) < 2 {
			l.add(c.Pos, "a conflict needs at least two quotes", "quote each side of the contradiction")
		}
		if !slices.ContainsFunc(c.Quotes, func(q Quote) bool { return q.Section == c.Tested }) {
			l.add(c.Pos, fmt.Sprintf("conflict %q tests section %q, which none of its quotes is from", c.About, c.Tested), "set tested: to the section of the reading the claims test")
		}
		for _, id := range c.Claims {
			if !p.Has(id) {
				l.add(c.Pos, fmt.Sprintf("conflict %q names claim %q, which the policy does not make", c.About, id), "")
			}
		}
	}
}

// checkQuotes reports every quote that is not verbatim in the source or sits
// in another section than the one given.
func (l *loader) checkQuotes(p *Policy) {
	doc := ParseDocument(p.SourceText, p.UnnumberedSections())
	check := func(q Quote, optional bool) {
		if !doc.HasSection(q.Section) {
			l.add(q.Pos, fmt.Sprintf("section %q is not a heading of the source document", q.Section), "use the number of the heading the sentence sits under, e.g. \"2.1\"")
		}
		if q.Text == "" {
			// A missing quote key was reported where the entry starts.
			if !optional && q.Pos.Line > 0 {
				l.add(q.Pos, "empty quote", "")
			}
			return
		}
		start, _, ok := doc.Find(q.Text)
		if !ok {
			hint := "copy the sentence exactly; only whitespace may differ"
			if s, ok := doc.Closest(q.Text); ok {
				hint = fmt.Sprintf("closest sentence, line %d: %q", s.Line, abbreviate(s.Text, 80))
			}
			l.add(q.Pos, fmt.Sprintf("quote not found verbatim in the source document: %q", abbreviate(q.Text, 60)), hint)
			return
		}
		if got := doc.SectionAt(start); got != q.Section && !strings.HasPrefix(got, q.Section+".") && doc.HasSection(q.Section) {
			l.add(q.Pos, fmt.Sprintf("quote is in section %q, not %q", got, q.Section), "")
		}
	}
	for _, c := range p.Claims {
		for _, q := range c.Quotes() {
			check(q, false)
		}
	}
	for _, s := range p.Statements {
		check(s.Quote, false)
	}
	for _, c := range p.Conflicts {
		for _, q := range c.Quotes {
			check(q, false)
		}
	}
	for _, b := range p.Boilerplate {
		check(b.Quote, true)
	}
}

// UnnumberedSections returns the section names the policy uses that are not
// numbers ("Terms of Service"): they are headings of the source too.
func (p *Policy) UnnumberedSections() []string {
	var out []string
	add := func(q Quote) {
		if q.Section != "" && !numberedHeading.MatchString(q.Section+" x") && !slices.Contains(out, q.Section) {
			out = append(out, q.Section)
		}
	}
	for _, c := range p.Claims {
		for _, q := range c.Quotes() {
			add(q)
		}
	}
	for _, s := range p.Statements {
		add(s.Quote)
	}
	for _, c := range p.Conflicts {
		for _, q := range c.Quotes {
			add(q)
		}
	}
	for _, b := range p.Boilerplate {
		add(b.Quote)
	}
	return out
}

func abbreviate(s string, n int) string {
	r := []rune(NormalizeSpace(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n]) + "…"
}
