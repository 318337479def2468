package conformance

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/spec"
)

// blinded is the embedded reference server with one evidence channel
// blinded, as a target file naming the wrong log file or data directory,
// or a clock command that does nothing, would blind it. The channel stays
// declared: only a positive control can tell that it sees nothing.
type blinded struct {
	*target.Embedded
	mode  string
	other *target.Embedded // another server, for "of another server"
}

// Blinding modes.
const (
	logsEmpty   = "logs empty"
	logsOther   = "logs of another server"
	dataEmpty   = "data dir empty"
	dataOther   = "data dir of another server"
	clockNoop   = "clock advance a no-op"
	purgeNoop   = "purge a no-op"
	deleteNoop  = "out-of-band account deletion a no-op"
	unblindedOK = "unblinded"
)

func (b *blinded) Logs(ctx context.Context) (*evidence.Corpus, error) {
	switch b.mode {
	case logsEmpty:
		c := evidence.NewCorpus(0)
		return c, c.Add("log:server.log", nil)
	case logsOther:
		return b.other.Logs(ctx)
	}
	return b.Embedded.Logs(ctx)
}

func (b *blinded) Data(ctx context.Context) (*evidence.Corpus, error) {
	switch b.mode {
	case dataEmpty:
		return evidence.NewCorpus(0), nil
	case dataOther:
		return b.other.Data(ctx)
	}
	return b.Embedded.Data(ctx)
}

func (b *blinded) PlainData(ctx context.Context) (*evidence.Corpus, error) {
	switch b.mode {
	case dataEmpty:
		return evidence.NewCorpus(0), nil
	case dataOther:
		return b.other.PlainData(ctx)
	}
	return b.Embedded.PlainData(ctx)
}

func (b *blinded) Advance(ctx context.Context, d time.Duration) error {
	if b.mode == clockNoop {
		return nil
	}
	return b.Embedded.Advance(ctx, d)
}

func (b *blinded) DeleteAccount(ctx context.Context, a target.Account) error {
	if b.mode == deleteNoop {
		return nil
	}
	return b.Embedded.DeleteAccount(ctx, a)
}

// channelOf is the channel a mode blinds.
var channelOf = map[string]spec.Capability{
	logsEmpty: spec.CapLogs, logsOther: spec.CapLogs, dataEmpty: spec.CapData, dataOther: spec.CapData,
	clockNoop: spec.CapClock, purgeNoop: spec.CapPurge,
	// deleteNoop blinds no channel a verdict rests on: checks delete
	// accounts in-band (XEP-0077) and prove it by <not-authorized/>; the
	// out-of-band deletion runs at cleanup only. Every claim must keep its
	// pass.
}

// busy gives the other server a history of its own: accounts, a failed
// login, a session with a roster entry, an offline message.
func busy(t *testing.T, srv *target.Embedded) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := srv.NewAccount(ctx, "other-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.NewAccount(ctx, "other-b")
	if err != nil {
		t.Fatal(err)
	}
	opts := []xmppclient.Option{xmppclient.WithDomain(srv.Domain()), xmppclient.WithInsecureSkipVerify(),
		xmppclient.WithTLSVersions(tls.VersionTLS12, 0), xmppclient.WithTimeout(10 * time.Second)}
	c, err := xmppclient.Dial(ctx, srv.Addrs().C2S, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, a.User, "wrong-password"); err == nil {
		t.Fatal("the other server accepted a wrong password")
	}
	c.Close(ctx)
	c, err = xmppclient.Connect(ctx, srv.Addrs().C2S, a.User, a.Password, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.SetRosterItem(ctx, xmppclient.RosterItem{JID: b.User + "@" + srv.Domain(), Name: "other roster name"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, b.User+"@"+srv.Domain(), "a message on another server"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// TestBlindChannels is the general guard: every claim runs against the
// embedded reference server with one evidence channel blinded at a time,
// and no claim examining that channel may pass. Where a positive control
// can tell the channel is blind (logs, data, clock), the verdict must be
// not-testable; a purge that never runs leaves the expired data in place,
// which is a fail. Claims not examining the channel keep their pass, and
// the unblinded server passes every claim (the same wrapper, both ways).
func TestBlindChannels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every claim eight times")
	}
	pol := defaultPolicy(t)
	other := startEmbedded(t, pol)
	ctx := context.Background()
	busy(t, other)

	for _, mode := range []string{unblindedOK, logsEmpty, logsOther, dataEmpty, dataOther, clockNoop, purgeNoop, deleteNoop} {
		t.Run(mode, func(t *testing.T) {
			serverPol := pol
			if mode == purgeNoop {
				// The server's own purge never comes due within the
				// clock moves of the suite: what a purge command that
				// does nothing leaves behind.
				long := spec.Value{Type: spec.TypeDuration, Duration: 3650 * 24 * time.Hour}
				serverPol = withParam(t, withParam(t, pol, spec.OfflineRetention, "max_age", long), spec.UploadRetention, "max_age", long)
			}
			emb, err := target.NewEmbedded(serverPol)
			if err != nil {
				t.Fatal(err)
			}
			if err := emb.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { emb.Close(ctx) })
			tg := &blinded{Embedded: emb, mode: mode, other: other}
			for _, id := range spec.ClaimIDs() {
				k, _ := spec.Lookup(id)
				res := checkOne(t, tg, id, 30*time.Second)
				ch, blind := channelOf[mode]
				depends := blind && k.NeedsCap(ch)
				want := report.Pass
				switch {
				case !depends:
				case ch == spec.CapPurge:
					if res.Verdict == report.Pass || res.Verdict == report.Error {
						t.Errorf("%s examines the purge; with the purge blinded it is %s (%s), want fail or not-testable", id, res.Verdict, res.Reason)
					}
					continue
				default:
					want = report.NotTestable
				}
				if res.Verdict != want {
					t.Errorf("%s (channels %v): %s (%s), want %s", id, k.Channels, res.Verdict, res.Reason, want)
				}
			}
		})
	}
}

// TestBlindChannelsNameTheChannel: the reason of a blinded claim names the
// blind channel and what to fix in the target file.
func TestBlindChannelsNameTheChannel(t *testing.T) {
	pol := defaultPolicy(t)
	emb := startEmbedded(t, pol)
	for _, tc := range []struct {
		mode  string
		claim spec.ClaimID
		want  []string
	}{
		{logsEmpty, spec.PrivacyNoClientIP, []string{"logs:", "none of this spec's markers", "account ip-a-", "fix evidence.logs in the target file"}},
		{dataEmpty, spec.OfflineDeleteOnDelivery, []string{"stored data", "this spec's marker", "fix the target file"}},
		{clockNoop, spec.OfflineRetention, []string{"clock:", "clock did not move", "fix clock.advance in the target file"}},
	} {
		res := checkOne(t, &blinded{Embedded: emb, mode: tc.mode}, tc.claim, 30*time.Second)
		for _, w := range tc.want {
			if res.Verdict != report.NotTestable || !containsAny([]string{res.Reason}, w) {
				t.Errorf("%s, %s: %s (%s), want not-testable naming %q", tc.mode, tc.claim, res.Verdict, res.Reason, w)
			}
		}
	}
}
