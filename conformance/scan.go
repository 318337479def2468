package conformance

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

// data returns what the server stores: the decrypted view when the target
// offers one (plain=true), else the raw data directory.
func (e *Env) data(ctx context.Context) (c *evidence.Corpus, plain bool, err error) {
	if pd, ok := e.Target.(target.PlainDataer); ok {
		c, err := pd.PlainData(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("decrypted view of the data: %w", err)
		}
		raw, err := e.Target.Data(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("data directory: %w", err)
		}
		return evidence.Merge(c, raw), true, nil
	}
	c, err = e.Target.Data(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("data directory: %w", err)
	}
	return c, false, nil
}

// size formats a byte count for reasons ("12 KB").
func size(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d MB", n>>20)
}

// whatOf lists the needles' descriptions.
func whatOf(ns []evidence.Needle) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.What)
	}
	return strings.Join(s, ", ")
}

// dataWith reads the stored data (the data channel) and proves it live
// with controls: markers of this spec that the server certainly stored
// (a unique account name, a pending message body). Each control must be
// found in this very corpus before a negative scan of it may count. It
// returns ok=false, with the part recorded as not examined, when the
// channel is missing or a control is not found.
func (e *Env) dataWith(ctx context.Context, part string, controls ...evidence.Needle) (c *evidence.Corpus, ok bool, err error) {
	if !e.channel(spec.CapData, part) {
		return nil, false, nil
	}
	c, plain, err := e.data(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		e.Blind(part, "the stored data could not be read (%v): fix evidence.data in the target file", err)
		return nil, false, nil
	}
	for _, ctl := range controls {
		if found(c, ctl) {
			continue
		}
		why := "evidence.data may name the wrong directory, or the server keeps it elsewhere (a database: add evidence.dump)"
		if !plain {
			why += ", or the store is encrypted and the target offers no decrypted view (evidence.decrypted)"
		}
		e.Blind(part, "this spec's marker (%s) is in none of the %d stored file(s), %s: %s; fix the target file",
			ctl.What, len(c.Files), size(c.Size()), why)
		return c, false, nil
	}
	view := "raw data directory"
	if plain {
		view = "decrypted store and raw data directory"
	}
	e.Observe(part+": positive control", true, "%s found in the %s (%d files, %s)", whatOf(controls), view, len(c.Files), size(c.Size()))
	return c, true, nil
}

// found reports whether the corpus holds n: in a file's bytes, or in a
// file's name (percent-decoded), where stores such as Prosody's keep the
// account name (HOST/accounts/USER.dat) and nothing else names it.
func found(c *evidence.Corpus, n evidence.Needle) bool {
	if len(c.Find(n)) > 0 {
		return true
	}
	for _, f := range c.Files {
		name := f.Name
		if u, err := url.PathUnescape(name); err == nil {
			name = u
		}
		for _, form := range n.Forms {
			if len(form.Bytes) > 0 && strings.Contains(name, string(form.Bytes)) {
				return true
			}
		}
	}
	return false
}

// logMark is one of a spec's marks in the logs. A mark unique to the spec
// (its account name, its own source address) counts where it appears; a
// shared one (the address of a container network's gateway, which every
// client of the server shares) counts only where the logs hold more of it
// than they did before the spec's failed login (before >= 0), so a stale
// file or an earlier spec cannot supply it.
type logMark struct {
	evidence.Needle
	before int // -1: unique to the spec
}

// logControl returns the first mark the logs show (nil when none), so a
// clean log scan is only claimed where the logs demonstrably hold the
// server's records of this spec's activity.
func logControl(logs *evidence.Corpus, marks ...logMark) *logMark {
	for i := range marks {
		if n := len(logs.Find(marks[i].Needle)); n > 0 && n > marks[i].before {
			return &marks[i]
		}
	}
	return nil
}

// logMarks leaves this spec's own marks in the logs: a failed login to a
// (a wrong password) from a fresh address of the spec's own where the
// client may choose its source. The marks are the controls of every log
// scan of the spec: the account name (unique to the spec), the spec's own
// address where the server sees it, and the address the server sees
// instead (a gateway), counted before and after. Servers that log anything
// of sessions log failed logins.
func (e *Env) logMarks(ctx context.Context, a target.Account) (failed netip.Addr, marks []logMark, err error) {
	if e.local.IsValid() {
		failed = randomLoopback()
	}
	if ok, _ := e.Target.Has(spec.CapLogs); !ok {
		return failed, nil, nil // no logs to mark: no failed login on the server
	}
	seen := e.Target.SeenAddrs(ctx, failed)
	var shared []netip.Addr
	for _, s := range seen {
		if s != failed {
			shared = append(shared, s)
		}
	}
	var before *evidence.Corpus
	if len(shared) > 0 {
		before, _ = e.Target.Logs(ctx) // nil on error: the shared marks are then not counted
	}
	err = e.from(failed, func() error {
		c, err := e.Client(ctx)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		err = c.Login(ctx, a.User, "wrong-"+UniqueName("pw"))
		var se *xmppclient.SASLError
		var st *xmppclient.StreamError
		switch {
		case err == nil:
			return errors.New("a wrong password was accepted")
		case errors.As(err, &se), errors.As(err, &st):
			// Refused (<not-authorized/>, or a lockout's condition): the
			// server handled the attempt, which is all a mark needs.
			return nil
		}
		return fmt.Errorf("a wrong password was neither refused nor accepted: %w", err)
	})
	if err != nil {
		return failed, nil, fmt.Errorf("failed-login mark in the logs: %w", err)
	}
	if failed.IsValid() && slices.Contains(seen, failed) {
		marks = append(marks, logMark{evidence.AddressNeedle(failed), -1})
	}
	acct := e.accountNeedle(a.User)
	acct.What = "account " + a.User + " (its failed login)"
	marks = append(marks, logMark{acct, -1})
	if before != nil {
		for _, s := range shared {
			n := evidence.AddressNeedle(s)
			n.What = "one more line with " + s.String() + " (the address the server sees, shared by every client) than before the failed login"
			marks = append(marks, logMark{n, len(before.Find(n))})
		}
	}
	return failed, marks, nil
}

// liveLogMarks returns log marks for a spec whose log scans need only
// proof that the logs are live: when the logs already name one of the
// spec's own accounts (servers log authentications, account creation), that
// unique name is the mark and no failed login is spent; else logMarks. A
// failed login counts against the server's per-address limit, and behind a
// shared address (a container's port proxy) every spec's would add up to a
// lockout of the harness itself.
func (e *Env) liveLogMarks(ctx context.Context, a target.Account) ([]logMark, error) {
	if ok, _ := e.Target.Has(spec.CapLogs); ok {
		if logs, err := e.Target.Logs(ctx); err == nil {
			for _, acc := range e.accounts {
				n := e.accountNeedle(acc.User)
				if len(logs.Find(n)) > 0 {
					n.What = "account " + acc.User + " (created by this spec)"
					return []logMark{{n, -1}}, nil
				}
			}
		}
	}
	_, marks, err := e.logMarks(ctx, a)
	return marks, err
}

func markNames(marks []logMark) string {
	var s []string
	for _, m := range marks {
		s = append(s, m.What)
	}
	return strings.Join(s, ", ")
}

// logSettle bounds how long logsWith waits for a spec's mark to reach the
// logs after the event that writes it.
const logSettle = 5 * time.Second

// logsWith reads the logs (the logs channel) and proves them live with
// one of this spec's marks (logMarks). ok=false, with the part recorded as
// not examined, when the channel is missing or no mark is found: logs of
// another server, an old file, an empty file or a server logging nothing
// at its level cannot supply the control.
func (e *Env) logsWith(ctx context.Context, part string, marks []logMark) (*evidence.Corpus, bool, error) {
	if !e.channel(spec.CapLogs, part) {
		return nil, false, nil
	}
	// Servers write log lines asynchronously (ejabberd's logger, a
	// buffered file): the spec's mark may land a moment after the event.
	// The logs are read again, within a bound, until a mark shows.
	deadline := time.Now().Add(logSettle)
	var logs *evidence.Corpus
	var ctl *logMark
	for {
		var err error
		logs, err = e.Target.Logs(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, err
			}
			e.Blind(part, "the logs could not be read (%v): fix evidence.logs in the target file", err)
			return nil, false, nil
		}
		if ctl = logControl(logs, marks...); ctl != nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if ctl == nil {
		e.Blind(part, "none of this spec's markers (%s) appear in %d file(s), %s: evidence.logs may name the wrong file, or the server logs nothing of sessions at its level; fix evidence.logs in the target file",
			markNames(marks), len(logs.Files), size(logs.Size()))
		return logs, false, nil
	}
	e.Observe(part+": positive control", true, "%s found in the logs (%d file(s), %s)", ctl.What, len(logs.Files), size(logs.Size()))
	return logs, true, nil
}

// failedLoginLine recognises log lines about a failed login, where
// privacy.no-client-ip may allow the address.
var failedLoginLine = regexp.MustCompile(`(?i)fail|invalid|incorrect|not[- ]authori[sz]ed|denied|bad (password|credentials)|authentication error|brute`)

// accountNeedle is the account name and JID in plain form, a control that
// servers store and usually log.
func (e *Env) accountNeedle(user string) evidence.Needle {
	return evidence.Needle{What: "the account name " + user, Forms: []evidence.Form{
		{Name: "jid", Bytes: []byte(user + "@" + e.Target.Domain())}, {Name: "plain", Bytes: []byte(user)},
	}}
}

// addressNeedles returns needles for every address the server may have
// seen for local.
func (e *Env) addressNeedles(ctx context.Context, local netip.Addr) []evidence.Needle {
	var out []evidence.Needle
	for _, a := range e.Target.SeenAddrs(ctx, local) {
		out = append(out, evidence.AddressNeedle(a))
	}
	return out
}

// fingerprint summarises a corpus for "did the server write here" checks.
func fingerprint(c *evidence.Corpus) string {
	h := sha256.New()
	for _, f := range c.Files {
		h.Write([]byte(f.Name))
		h.Write(f.Data)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// timestampNeedle finds the seconds of [from, to] written as Unix time
// (seconds, and the seconds prefix of milliseconds) or as ISO 8601 / SQL
// date-times in UTC and local time.
func timestampNeedle(from, to time.Time) evidence.Needle {
	n := evidence.Needle{What: fmt.Sprintf("a time between %s and %s", from.UTC().Format(time.TimeOnly), to.UTC().Format(time.TimeOnly))}
	for t := from.Truncate(time.Second); !t.After(to); t = t.Add(time.Second) {
		n.Forms = append(n.Forms, evidence.Form{Name: "unix", Bytes: []byte(fmt.Sprint(t.Unix()))})
		for _, loc := range []*time.Location{time.UTC, time.Local} {
			lt := t.In(loc)
			n.Forms = append(n.Forms,
				evidence.Form{Name: "iso8601", Bytes: []byte(lt.Format("2006-01-02T15:04:05"))},
				evidence.Form{Name: "sql", Bytes: []byte(lt.Format("2006-01-02 15:04:05"))})
		}
	}
	return n
}

func filterHits(hits []evidence.Hit, drop func(evidence.Hit) bool) (kept, dropped []evidence.Hit) {
	for _, h := range hits {
		if drop(h) {
			dropped = append(dropped, h)
		} else {
			kept = append(kept, h)
		}
	}
	return kept, dropped
}

func names(ns []evidence.Needle) string {
	var s []string
	for _, n := range ns {
		s = append(s, strings.TrimPrefix(n.What, "client address "))
	}
	return strings.Join(s, ", ")
}

// noChannel reports whether the target lacks every one of the channels,
// recording each as not examined: a check whose every part needs one of
// them then ends without touching the server.
func (e *Env) noChannel(parts map[spec.Capability]string) bool {
	for c := range parts {
		if ok, _ := e.Target.Has(c); ok {
			return false
		}
	}
	for _, c := range spec.Channels() {
		if part, ok := parts[c]; ok {
			e.channel(c, part)
		}
	}
	return true
}
