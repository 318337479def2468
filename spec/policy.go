package spec

import (
	"time"
)

// Policy is an executable policy: the claims a privacy policy makes, each
// tied to the verbatim sentence it comes from, plus the sentences that cannot
// be tested and the places where the document contradicts itself.
type Policy struct {
	// Name is the policy's title ("JabberX Privacy Policy").
	Name string `json:"policy"`
	// Updated is the date the source document was last updated.
	Updated time.Time `json:"-"`
	// Source is the source document as written in the file: a path relative
	// to the policy file, or an http(s) URL.
	Source string `json:"source"`
	// Claims are the testable promises, in file order.
	Claims []Claim `json:"claims"`
	// Statements are promise-bearing sentences that cannot be tested.
	Statements []Statement `json:"statements"`
	// Conflicts are places where the document contradicts itself.
	Conflicts []Conflict `json:"conflicts"`
	// Boilerplate marks text that makes no promise (whole sections or
	// single sentences), so coverage can account for every sentence.
	Boilerplate []Boilerplate `json:"boilerplate"`

	// File is the path the policy was loaded from.
	File string `json:"file"`
	// SourceText is the source document's text.
	SourceText string `json:"-"`
}

// Position is a line and column in a policy file, both 1-based.
type Position struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Quote is a verbatim excerpt of the source document and the section it
// sits in.
type Quote struct {
	Section string   `json:"section"`
	Text    string   `json:"quote"`
	Pos     Position `json:"-"`
}

// Claim is one testable promise: an instance of a claim kind with its
// parameters and the sentence it comes from.
type Claim struct {
	ID     ClaimID `json:"id"`
	Params Params  `json:"params"`
	Quote
	// Also lists further sentences that make the same promise.
	Also  []Quote  `json:"also,omitempty"`
	Notes string   `json:"notes,omitempty"`
	Pos   Position `json:"-"`
}

// Kind returns the claim's catalogue entry.
func (c Claim) Kind() Kind {
	k, _ := Lookup(c.ID)
	return k
}

// Quotes returns the claim's quote followed by its Also quotes.
func (c Claim) Quotes() []Quote { return append([]Quote{c.Quote}, c.Also...) }

// Statement is a promise-bearing sentence that cannot be tested, with the
// reason why.
type Statement struct {
	Quote
	Reason string   `json:"reason"`
	Pos    Position `json:"-"`
}

// Conflict records where the source document contradicts itself and which
// reading the policy tests.
type Conflict struct {
	About  string    `json:"about"`
	Quotes []Quote   `json:"quotes"`
	Tested string    `json:"tested"` // the section whose reading is tested
	Claims []ClaimID `json:"claims"` // the claims that test that reading
	Reason string    `json:"reason"`
	Pos    Position  `json:"-"`
}

// Boilerplate marks text that makes no promise. With an empty Text it covers
// the whole section.
type Boilerplate struct {
	Quote
	Reason string   `json:"reason"`
	Pos    Position `json:"-"`
}

// Claim returns the policy's claim with the given id.
func (p *Policy) Claim(id ClaimID) (Claim, bool) {
	for _, c := range p.Claims {
		if c.ID == id {
			return c, true
		}
	}
	return Claim{}, false
}

// Has reports whether the policy makes a claim of the given id.
func (p *Policy) Has(id ClaimID) bool {
	_, ok := p.Claim(id)
	return ok
}
