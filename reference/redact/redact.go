package redact

import (
	"bytes"
	"context"
	"errors"
	"log"
	"log/slog"
	"regexp"
)

// Mark replaces every address.
const Mark = "[address]"

// addrPattern matches IPv4 and IPv6 addresses with or without a port, in
// brackets or not, and bare ports after a colon that follow an address.
var addrPattern = regexp.MustCompile(`\[[0-9A-Fa-f:.%a-zA-Z]*\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\b[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}(%[0-9A-Za-z]+)?\b|[0-9A-Fa-f:]*::[0-9A-Fa-f:.]*`)

// String removes addresses from s.
func String(s string) string { return addrPattern.ReplaceAllString(s, Mark) }

// Err formats err without addresses ("" for nil).
func Err(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}

// Error is an error whose message has been redacted; errors.Is and As still
// see the original.
type Error struct{ err error }

// Wrap returns err with a redacted message (nil for nil).
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	var r *Error
	if errors.As(err, &r) && r == err {
		return err
	}
	return &Error{err}
}

func (e *Error) Error() string { return Err(e.err) }
func (e *Error) Unwrap() error { return e.err }

// Handler wraps h so that every error-valued attribute (at any depth of
// groups) and every value of an "err" attribute is redacted.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ h slog.Handler }

func (r handler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := make([]slog.Attr, len(as))
	for i, a := range as {
		c[i] = attr(a)
	}
	return handler{r.h.WithAttrs(c)}
}

func (r handler) WithGroup(name string) slog.Handler { return handler{r.h.WithGroup(name)} }

func attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		c := make([]slog.Attr, len(g))
		for i, x := range g {
			c[i] = attr(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(c...)}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, Err(err))
		}
	}
	if a.Key == "err" || a.Key == "error" {
		return slog.String(a.Key, String(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// Writer returns a log.Logger (for http.Server.ErrorLog) whose lines are
// redacted and written to l at level, after prefix.
func Writer(l *slog.Logger, level slog.Level, prefix string) *log.Logger {
	return log.New(writer{l, level, prefix}, "", 0)
}

type writer struct {
	l      *slog.Logger
	level  slog.Level
	prefix string
}

func (w writer) Write(p []byte) (int, error) {
	w.l.Log(context.Background(), w.level, w.prefix+String(string(bytes.TrimSpace(p))))
	return len(p), nil
}
