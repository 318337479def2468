package spec

import (
	"slices"
	"testing"
)

// TestChannels: a kind's Needs are what it cannot run without (network,
// accounts); evidence channels are listed apart (Channels), so a target
// lacking one still runs the parts it can. Retention kinds examine the
// clock and the purge, and every claim reading logs or data says so.
func TestChannels(t *testing.T) {
	for _, k := range Kinds() {
		for _, c := range k.Needs {
			if c != CapNetwork && c != CapAccounts {
				t.Errorf("%s needs %s: evidence channels belong in Channels", k.ID, c)
			}
		}
		for _, c := range k.Channels {
			if !slices.Contains(Channels(), c) {
				t.Errorf("%s examines %s, which is not an evidence channel", k.ID, c)
			}
		}
	}
	for id, want := range map[ClaimID][]Capability{
		OfflineRetention:        {CapClock, CapPurge, CapData},
		UploadRetention:         {CapClock, CapPurge, CapData},
		AccountSelfDeletion:     {CapData},
		PrivacyNoClientIP:       {CapLogs, CapData},
		AuthSCRAMStorage:        {CapLogs, CapData},
		StorageEncryptedAtRest:  {CapData},
		OfflineDeleteOnDelivery: {CapData},
	} {
		k, _ := Lookup(id)
		for _, c := range want {
			if !k.NeedsCap(c) {
				t.Errorf("%s does not declare the %s channel", id, c)
			}
		}
	}
}
