package target

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"go.yaml.in/yaml/v3"
)

// Problem is one problem of a target file, at a position in it.
type Problem struct {
	File      string
	Line, Col int
	Msg, Hint string
}

// String formats the problem as FILE:LINE:COL: message (hint: …), the way
// `xmppcheck policy lint` does.
func (p Problem) String() string {
	s := fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
	if p.Hint != "" {
		s += " (hint: " + p.Hint + ")"
	}
	return s
}

// Lint reads a target file and reports every problem at once, each with
// its line and column: unknown keys (with the nearest known one), values of
// the wrong shape or type, duplicate keys, then what LoadFile's validation
// and the caller's checks (WithCheck) find. The walk follows the yaml tags
// of File by reflection, so a field added to File is linted with no change
// here.
func Lint(path string, opts ...LoadOption) []Problem {
	b, err := os.ReadFile(path)
	if err != nil {
		return []Problem{{File: path, Line: 1, Col: 1, Msg: err.Error()}}
	}
	l := &linter{file: path, pos: map[string]*yaml.Node{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return []Problem{l.yamlError(err)}
	}
	if len(doc.Content) == 0 {
		return []Problem{{File: path, Line: 1, Col: 1, Msg: "empty target file", Hint: "see CONTRIBUTING.md, Target files"}}
	}
	l.walk(doc.Content[0], reflect.TypeFor[File](), "")
	if len(l.problems) > 0 {
		return l.problems
	}
	// The shape is right: decode and run the semantic checks, each placed
	// at the key it names.
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return []Problem{l.yamlError(err)}
	}
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
	if abs, err := filepath.Abs(path); err == nil {
		f.Path, f.Dir = abs, filepath.Dir(abs)
	}
	errs := f.validate()
	for _, c := range cfg.checks {
		errs = append(errs, c(&f)...)
	}
	for _, e := range errs {
		l.problems = append(l.problems, l.place(e))
	}
	return l.problems
}

type linter struct {
	file     string
	problems []Problem
	pos      map[string]*yaml.Node // key path ("ports.c2s") → its value node
}

func (l *linter) add(n *yaml.Node, hint, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: l.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (l *linter) yamlError(err error) Problem {
	var te *yaml.TypeError
	line := 1
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	fmt.Sscanf(strings.TrimPrefix(msg, "yaml: "), "line %d:", &line)
	return Problem{File: l.file, Line: line, Col: 1, Msg: msg}
}

// place positions a validation error at the key path it starts with
// ("ports.c2s is required" → ports.c2s, else ports), or at the top.
func (l *linter) place(err error) Problem {
	msg := err.Error()
	word, _, _ := strings.Cut(msg, " ")
	word = strings.TrimSuffix(word, ":")
	if i := strings.IndexByte(word, '['); i >= 0 {
		word = word[:i]
	}
	for p := word; p != ""; {
		if n, ok := l.pos[p]; ok {
			return Problem{File: l.file, Line: n.Line, Col: n.Column, Msg: msg}
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Problem{File: l.file, Line: 1, Col: 1, Msg: msg}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walk checks node n against Go type t at key path path.
func (l *linter) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		l.pos[path] = n
	}
	if n.Tag == "!!null" {
		return // an empty value is the zero value
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			l.add(n, "", "%s: %v", path, strings.TrimPrefix(err.Error(), fmt.Sprintf("line %d: ", n.Line)))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		l.walk(n, t.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			l.add(n, "write it as a mapping of key: value lines; keys: "+strings.Join(keysOf(t), ", "), "%s: want a mapping, got %s", label(path), shape(n))
			return
		}
		known := keysOf(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				l.add(k, "", "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			f, ok := fieldOf(t, k.Value)
			if !ok {
				l.add(k, suggest(k.Value, known), "unknown key %q in %s", k.Value, label(path))
				continue
			}
			l.walk(v, f.Type, join(path, k.Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			hint := `write a list: [a, b] or one "- item" per line`
			if t.Elem().Kind() == reflect.Slice {
				hint = `a list of commands, each a list of arguments: [["cmd", "arg"]]`
			}
			l.add(n, hint, "%s: want a list, got %s", path, shape(n))
			return
		}
		for i, e := range n.Content {
			l.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			l.add(n, "write it as { KEY: value }", "%s: want a mapping, got %s", path, shape(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			l.add(n, "quote it if it is meant as text", "%s: want a string, got %s", path, shape(n))
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint16:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			l.add(n, "an integer such as 5222", "%s: want an integer, got %s", path, shape(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			l.add(n, "true or false", "%s: want true or false, got %s", path, shape(n))
		}
	default:
		var v = reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			l.add(n, "", "%s: %v", path, err)
		}
	}
}

func label(path string) string {
	if path == "" {
		return "the target file"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q (%s)", n.Value, strings.TrimPrefix(n.ShortTag(), "!!"))
}

// yamlName is a field's key: its yaml tag name, or the lower-cased field
// name as go.yaml.in/yaml does; "" for fields not in the file.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func keysOf(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if n := yamlName(f); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func fieldOf(t reflect.Type, key string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest names the nearest known key, or lists them.
func suggest(key string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		if d := levenshtein.ComputeDistance(key, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(key)/3) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	slices.Sort(known)
	return "known keys: " + strings.Join(known, ", ")
}
