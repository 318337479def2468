package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/internal/fakeserver"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// TestUploadURLsBothWays: random 128-bit slot ids and no listing pass;
// counter ids, or a server that lists its upload directories, fail.
func TestUploadURLsBothWays(t *testing.T) {
	tests := []struct {
		name   string
		upload fakeserver.Upload
		want   report.Verdict
		reason string
	}{
		{"random ids, no listing", fakeserver.Upload{}, report.Pass, ""},
		{"counter ids", fakeserver.Upload{Guessable: true}, report.Fail, "randomness"},
		{"directory listing", fakeserver.Upload{Listing: true}, report.Fail, "lists the slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := target.Account{User: "alice", Password: "hunter2-" + UniqueName("pw")}
			srv := fakeserver.Start(t, fakeserver.WithUser(acct.User, acct.Password), fakeserver.WithUpload(tt.upload))
			tg := &fakeTarget{
				addrs:    target.Addrs{C2S: srv.Addr(), HTTP: srv.HTTPAddr()},
				caps:     map[spec.Capability]bool{spec.CapAccounts: true},
				accounts: []target.Account{acct},
			}
			res := checkOne(t, tg, spec.UploadUnguessableURL, 20*time.Second)
			if res.Verdict != tt.want || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("%s (%s), want %s with %q\n%v", res.Verdict, res.Reason, tt.want, tt.reason, res.Evidence)
			}
		})
	}
}
