package spec

import (
	"slices"
	"strings"
)

// ClaimID is the stable identifier of a claim kind, e.g. "offline.retention".
type ClaimID string

// The claim kinds xmppcheck knows how to test. Ids are stable API.
const (
	TLSC2SRequired           ClaimID = "tls.c2s-required"
	TLSC2SMinVersion         ClaimID = "tls.c2s-min-version"
	TLSS2SMinVersion         ClaimID = "tls.s2s-min-version"
	AuthSCRAMStorage         ClaimID = "auth.scram-storage"
	AuthBruteForce           ClaimID = "auth.brute-force-protection"
	PrivacyNoClientIP        ClaimID = "privacy.no-client-ip"
	PrivacyNoConnectionTimes ClaimID = "privacy.no-connection-times"
	PrivacyNoMessageHistory  ClaimID = "privacy.no-message-history"
	MAMDisabled              ClaimID = "mam.disabled"
	OfflineDeleteOnDelivery  ClaimID = "offline.delete-on-delivery"
	OfflineRetention         ClaimID = "offline.retention"
	UploadUnguessableURL     ClaimID = "upload.unguessable-url"
	UploadRetention          ClaimID = "upload.retention"
	StorageEncryptedAtRest   ClaimID = "storage.encrypted-at-rest"
	RegistrationMinimalData  ClaimID = "registration.minimal-data"
	RegistrationRateLimited  ClaimID = "registration.rate-limited"
	AccountSelfDeletion      ClaimID = "account.self-deletion"
	AccountAddressReuse      ClaimID = "account.address-reuse"
)

// Family groups claim kinds by the part of a server they concern. It is the
// part of a claim id before the first dot.
type Family string

// Claim families.
const (
	FamilyTLS          Family = "tls"
	FamilyAuth         Family = "auth"
	FamilyPrivacy      Family = "privacy"
	FamilyMAM          Family = "mam"
	FamilyOffline      Family = "offline"
	FamilyUpload       Family = "upload"
	FamilyStorage      Family = "storage"
	FamilyRegistration Family = "registration"
	FamilyAccount      Family = "account"
)

// Family returns the family of the claim id (the part before the first dot).
func (id ClaimID) Family() Family {
	f, _, _ := strings.Cut(string(id), ".")
	return Family(f)
}

// Capability is something a claim needs from a target in order to be tested.
// A target that lacks a capability a claim needs yields the verdict
// not-testable for that claim, never a pass.
type Capability string

// Target capabilities (see docs/CLAIMS.md, "Evidence channels"). network
// and accounts are what a claim needs at all; logs, data, clock and purge
// are evidence channels a check examines. A target declares each channel,
// but a declared channel is not trusted: every negative scan counts only
// after a positive control taken in the same spec from the same corpus.
const (
	// CapNetwork: c2s/s2s/upload addresses and the domain are known.
	CapNetwork Capability = "network"
	// CapAccounts: test accounts can be created and deleted (IBR, an admin
	// command, or accounts given by the user).
	CapAccounts Capability = "accounts"
	// CapLogs: the server's logs can be read (target file: evidence.logs).
	CapLogs Capability = "logs"
	// CapData: the server's stored data can be read (target file:
	// evidence.data, evidence.decrypted, evidence.credentials).
	CapData Capability = "data"
	// CapClock: the server's clock can be moved forward (clock.advance).
	CapClock Capability = "clock"
	// CapPurge: the deployment's purge runs after each clock move (the
	// target file's purge commands, or the server's own timers running on
	// the moved clock).
	CapPurge Capability = "purge"

	// CapEvidence is logs or data. Deprecated: name the channel (CapLogs,
	// CapData); kept so that callers written before the split still build.
	CapEvidence Capability = "evidence"
)

// Capabilities lists every capability in a stable order.
func Capabilities() []Capability {
	return []Capability{CapNetwork, CapAccounts, CapLogs, CapData, CapClock, CapPurge}
}

// Channels lists the evidence channels (the capabilities a check examines
// and proves live with a positive control).
func Channels() []Capability {
	return []Capability{CapLogs, CapData, CapClock, CapPurge}
}

// Kind describes one claim kind of the catalogue.
type Kind struct {
	ID     ClaimID
	Title  string // short human title
	Passes string // what a passing server does (docs/CLAIMS.md)
	Params []ParamSpec
	Refs   []string // RFC/XEP references, e.g. "RFC 6120 §5", "XEP-0077"
	// Needs are what the claim cannot be tested without (network,
	// accounts): a target lacking one gets not-testable before the check
	// runs.
	Needs []Capability
	// Channels are the evidence channels the check examines (logs, data,
	// clock, purge). A target lacking one still runs the parts it can;
	// the part needing the channel is recorded as not examined, and the
	// verdict is not-testable unless a violation was seen.
	Channels []Capability
}

// Family returns the kind's family.
func (k Kind) Family() Family { return k.ID.Family() }

// Param returns the parameter spec called name.
func (k Kind) Param(name string) (ParamSpec, bool) {
	for _, p := range k.Params {
		if p.Name == name {
			return p, true
		}
	}
	return ParamSpec{}, false
}

// NeedsCap reports whether the kind needs capability c, or examines it as
// an evidence channel.
func (k Kind) NeedsCap(c Capability) bool {
	return slices.Contains(k.Needs, c) || slices.Contains(k.Channels, c)
}

// Labels returns the labels the conformance suite attaches to the kind's
// specs: the claim id, the family, and each reference in a label-safe form
// ("RFC6120", "XEP-0077"). Labels contain none of Ginkgo's reserved
// characters.
func (k Kind) Labels() []string {
	labels := []string{string(k.ID), string(k.Family())}
	for _, r := range k.Refs {
		l := RefLabel(r)
		if !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	return labels
}

// RefLabel turns a reference such as "RFC 6120 §5.4" into the label "RFC6120"
// and "XEP-0363 §5" into "XEP-0363".
func RefLabel(ref string) string {
	doc, _, _ := strings.Cut(ref, "§")
	return strings.ReplaceAll(strings.TrimSpace(doc), " ", "")
}

var (
	netOnly     = []Capability{CapNetwork}
	netAccounts = []Capability{CapNetwork, CapAccounts}

	logsData  = []Capability{CapLogs, CapData}
	dataOnly  = []Capability{CapData}
	clockData = []Capability{CapClock, CapPurge, CapData}

	tlsMinParam = ParamSpec{
		Name: "min", Type: TypeTLSVersion, Default: "1.2",
		Doc: "lowest TLS version the server may accept",
	}
)

// catalogue is the claim-kind table of docs/CLAIMS.md as typed data.
var catalogue = []Kind{
	{
		ID:     TLSC2SRequired,
		Title:  "TLS required on client connections",
		Passes: "no authentication is possible without TLS",
		Refs:   []string{"RFC 6120 §5.3.1", "RFC 7590"},
		Needs:  netOnly,
	},
	{
		ID:     TLSC2SMinVersion,
		Title:  "Minimum TLS version on client connections",
		Passes: "TLS handshakes below the floor on c2s (STARTTLS and direct TLS) fail; the floor and above work",
		Params: []ParamSpec{tlsMinParam},
		Refs:   []string{"RFC 6120 §5", "RFC 7590", "XEP-0368"},
		Needs:  netOnly,
	},
	{
		ID:     TLSS2SMinVersion,
		Title:  "Minimum TLS version between servers",
		Passes: "TLS handshakes below the floor on the s2s port fail; the floor and above work",
		Params: []ParamSpec{tlsMinParam},
		Refs:   []string{"RFC 6120 §5", "RFC 7590"},
		Needs:  netOnly,
	},
	{
		ID:     AuthSCRAMStorage,
		Title:  "Passwords stored only as SCRAM keys",
		Passes: "SCRAM offered; at rest only salt, iterations, StoredKey and ServerKey, consistent with the password; the password in no encoding anywhere",
		Params: []ParamSpec{
			{Name: "hash", Type: TypeHash, Default: "SHA-1", Doc: "SCRAM hash the stored keys are computed with"},
			{Name: "min_iterations", Type: TypeCount, Default: "4096", Min: 1, Max: 100_000_000, Doc: "lowest PBKDF2 iteration count accepted at rest"},
		},
		Refs:     []string{"RFC 5802 §3", "RFC 7677", "RFC 6120 §6"},
		Needs:    netAccounts,
		Channels: logsData,
	},
	{
		ID:     AuthBruteForce,
		Title:  "Brute-force protection on logins",
		Passes: "after max_failures failed logins from one address within window, further attempts are refused",
		Params: []ParamSpec{
			{Name: "max_failures", Type: TypeCount, Required: true, Min: 1, Max: 1000, Doc: "failed logins tolerated per address per window"},
			{Name: "window", Type: TypeDuration, Required: true, MinDuration: "1s", MaxDuration: "30d", Doc: "window over which failures are counted"},
		},
		Refs:  []string{"RFC 6120 §6.5"},
		Needs: netAccounts,
	},
	{
		ID:     PrivacyNoClientIP,
		Title:  "No client IP addresses logged or stored",
		Passes: "after successful sessions the client's address appears in no log and no stored file",
		Params: []ParamSpec{
			{Name: "allow", Type: TypeFieldList, Default: "[]", Allowed: []string{"failed-login"}, Doc: "events whose log lines may carry the client address"},
		},
		Needs:    netAccounts,
		Channels: logsData,
	},
	{
		ID:       PrivacyNoConnectionTimes,
		Title:    "No connection times stored",
		Passes:   "no login/logout times stored or served (e.g. XEP-0012 last activity)",
		Refs:     []string{"XEP-0012"},
		Needs:    netAccounts,
		Channels: logsData,
	},
	{
		ID:       PrivacyNoMessageHistory,
		Title:    "No message history",
		Passes:   "a message delivered online leaves no trace at rest",
		Refs:     []string{"RFC 6121 §8"},
		Needs:    netAccounts,
		Channels: logsData,
	},
	{
		ID:     MAMDisabled,
		Title:  "No message archive",
		Passes: "no urn:xmpp:mam feature; archive queries refused",
		Refs:   []string{"XEP-0313", "XEP-0030"},
		Needs:  netAccounts,
	},
	{
		ID:       OfflineDeleteOnDelivery,
		Title:    "Offline messages deleted on delivery",
		Passes:   "once delivered, an offline message is gone from storage",
		Refs:     []string{"XEP-0160"},
		Needs:    netAccounts,
		Channels: dataOnly,
	},
	{
		ID:     OfflineRetention,
		Title:  "Offline messages purged after a maximum age",
		Passes: "an offline message is gone after max_age (and, with min_age, still delivered before min_age)",
		Params: []ParamSpec{
			{Name: "max_age", Type: TypeDuration, Required: true, MinDuration: "1m", MaxDuration: "3650d", Doc: "age after which undelivered offline messages are deleted (gone after: the privacy promise)"},
			{Name: "min_age", Type: TypeDuration, MinDuration: "1m", MaxDuration: "3650d", Doc: "optional: age before which undelivered offline messages are still delivered (kept until: the availability promise); absent, a server deleting earlier passes"},
		},
		Refs:     []string{"XEP-0160"},
		Needs:    netAccounts,
		Channels: clockData,
	},
	{
		ID:     UploadUnguessableURL,
		Title:  "Upload URLs are unguessable",
		Passes: "slot URLs carry at least min_entropy_bits of randomness; no listing",
		Params: []ParamSpec{
			{Name: "min_entropy_bits", Type: TypeCount, Default: "128", Min: 64, Max: 1024, Doc: "randomness each slot URL must carry"},
		},
		Refs:  []string{"XEP-0363"},
		Needs: netAccounts,
	},
	{
		ID:     UploadRetention,
		Title:  "Uploads purged after a maximum age",
		Passes: "an uploaded file is gone after max_age (and, with min_age, still served before min_age)",
		Params: []ParamSpec{
			{Name: "max_age", Type: TypeDuration, Required: true, MinDuration: "1m", MaxDuration: "3650d", Doc: "age after which uploaded files are deleted (gone after: the privacy promise)"},
			{Name: "min_age", Type: TypeDuration, MinDuration: "1m", MaxDuration: "3650d", Doc: "optional: age before which uploaded files are still served (kept until: the availability promise); absent, a server deleting earlier passes"},
		},
		Refs:     []string{"XEP-0363"},
		Needs:    netAccounts,
		Channels: clockData,
	},
	{
		ID:       StorageEncryptedAtRest,
		Title:    "Stored data encrypted at rest",
		Passes:   "no stored plaintext (message bodies, vCards, roster names) in the data directory",
		Needs:    netAccounts,
		Channels: dataOnly,
	},
	{
		ID:     RegistrationMinimalData,
		Title:  "Registration asks for minimal data",
		Passes: "the XEP-0077 registration form asks nothing beyond the required and optional fields",
		Params: []ParamSpec{
			{Name: "required", Type: TypeFieldList, Default: "[username, password]", Allowed: registrationFields, Doc: "fields the form may require"},
			{Name: "optional", Type: TypeFieldList, Default: "[]", Allowed: registrationFields, Doc: "fields the form may offer as optional"},
		},
		Refs:  []string{"XEP-0077 §3.1"},
		Needs: netOnly,
	},
	{
		ID:     RegistrationRateLimited,
		Title:  "Mass registration refused",
		Passes: "more than max registrations from one address within window are refused",
		Params: []ParamSpec{
			{Name: "max", Type: TypeCount, Required: true, Min: 1, Max: 10000, Doc: "registrations allowed per address per window"},
			{Name: "window", Type: TypeDuration, Required: true, MinDuration: "1s", MaxDuration: "365d", Doc: "window over which registrations are counted"},
		},
		Refs:  []string{"XEP-0077 §3"},
		Needs: netOnly,
	},
	{
		ID:       AccountSelfDeletion,
		Title:    "Account self-deletion erases the account",
		Passes:   "XEP-0077 remove erases roster, vCard, offline messages and uploads",
		Refs:     []string{"XEP-0077 §3.2"},
		Needs:    netAccounts,
		Channels: dataOnly,
	},
	{
		ID:     AccountAddressReuse,
		Title:  "Deleted address free at once, nothing inherited",
		Passes: "after removal the address can be registered at once and its next owner inherits nothing",
		Refs:   []string{"XEP-0077 §3.2", "RFC 6121 §3"},
		Needs:  netAccounts,
	},
}

// registrationFields are the XEP-0077 §14.1 registration fields.
var registrationFields = []string{
	"username", "nick", "password", "name", "first", "last", "email",
	"address", "city", "state", "zip", "phone", "url", "date", "misc",
	"text", "key",
}

// Kinds returns the whole catalogue in its stable order. The slice is a copy.
func Kinds() []Kind { return slices.Clone(catalogue) }

// ClaimIDs returns every claim id in catalogue order.
func ClaimIDs() []ClaimID {
	ids := make([]ClaimID, len(catalogue))
	for i, k := range catalogue {
		ids[i] = k.ID
	}
	return ids
}

// Lookup returns the kind with the given id.
func Lookup(id ClaimID) (Kind, bool) {
	for _, k := range catalogue {
		if k.ID == id {
			return k, true
		}
	}
	return Kind{}, false
}

// Nearest returns the catalogue id closest to s by edit distance, for "did
// you mean" hints.
func Nearest(s string) ClaimID {
	best, bestD := ClaimID(""), -1
	for _, k := range catalogue {
		if d := editDistance(s, string(k.ID)); bestD < 0 || d < bestD {
			best, bestD = k.ID, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
