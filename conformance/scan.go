package conformance

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/target"
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

// scanData searches the stored data for needles after finding control. A
// missing control ends the check in error: the scan cannot see what the
// server certainly stored, so silence would prove nothing.
func (e *Env) scanData(ctx context.Context, what string, control evidence.Needle, needles ...evidence.Needle) ([]evidence.Hit, error) {
	c, plain, err := e.data(ctx)
	if err != nil {
		return nil, err
	}
	hits, err := c.Scan(control, needles...)
	if errors.Is(err, evidence.ErrControlMissing) {
		why := "the data path may be wrong"
		if !plain {
			why = "the store may be encrypted and the target offers no decrypted view, or the data path is wrong"
		}
		return nil, fmt.Errorf("%s: positive control failed: %s is not in the %d stored file(s) (%d bytes), so a clean scan would prove nothing (%s)",
			what, control.What, len(c.Files), c.Size(), why)
	}
	if err != nil {
		return nil, err
	}
	view := "raw data directory"
	if plain {
		view = "decrypted store and raw data directory"
	}
	e.Observe(what+": positive control", true, "%s found in the %s (%d files, %d bytes)", control.What, view, len(c.Files), c.Size())
	return hits, nil
}

// logControl reports which of the control needles the logs hold (nil when
// none), so a clean log scan is only claimed where the logs demonstrably
// hold the server's records of this spec's activity.
func logControl(logs *evidence.Corpus, controls ...evidence.Needle) *evidence.Needle {
	for i := range controls {
		if len(logs.Find(controls[i])) > 0 {
			return &controls[i]
		}
	}
	return nil
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
