package spec

// Mark says what accounts for a sentence of the source document.
type Mark string

// Coverage marks.
const (
	MarkClaim       Mark = "claim"
	MarkStatement   Mark = "statement"
	MarkConflict    Mark = "conflict"
	MarkBoilerplate Mark = "boilerplate"
	MarkHeading     Mark = "heading"
	MarkNone        Mark = "UNACCOUNTED"
)

// Account is one entry of a policy that accounts for a sentence.
type Account struct {
	Mark Mark   `json:"mark"`
	Ref  string `json:"ref"` // the claim id, "statement", conflict topic, or boilerplate reason
}

// SentenceCoverage is one sentence of the source with what accounts for it.
type SentenceCoverage struct {
	Sentence Sentence  `json:"-"`
	Text     string    `json:"text"`
	Section  string    `json:"section"`
	Line     int       `json:"line"`
	Accounts []Account `json:"accounts"`
}

// Accounted reports whether anything accounts for the sentence.
func (s SentenceCoverage) Accounted() bool { return len(s.Accounts) > 0 }

// Coverage splits the source document into sentences and says, for each,
// which claims, statements, conflicts or boilerplate entries account for it.
// A quote accounts for every sentence it overlaps; a boilerplate entry
// without a quote accounts for its whole section; headings account for
// themselves.
func (p *Policy) Coverage() []SentenceCoverage {
	doc := ParseDocument(p.SourceText, p.UnnumberedSections())
	type span struct {
		start, end int
		acc        Account
	}
	var spans []span
	addQuote := func(q Quote, acc Account) {
		if q.Text == "" {
			if s, e, ok := doc.SectionRange(q.Section); ok {
				spans = append(spans, span{s, e, acc})
			}
			return
		}
		if s, e, ok := doc.Find(q.Text); ok {
			spans = append(spans, span{s, e, acc})
		}
	}
	for _, c := range p.Claims {
		for _, q := range c.Quotes() {
			addQuote(q, Account{MarkClaim, string(c.ID)})
		}
	}
	for _, s := range p.Statements {
		addQuote(s.Quote, Account{MarkStatement, s.Reason})
	}
	for _, c := range p.Conflicts {
		for _, q := range c.Quotes {
			addQuote(q, Account{MarkConflict, c.About})
		}
	}
	for _, b := range p.Boilerplate {
		addQuote(b.Quote, Account{MarkBoilerplate, b.Reason})
	}
	out := make([]SentenceCoverage, 0, len(doc.Sentences))
	for _, s := range doc.Sentences {
		sc := SentenceCoverage{Sentence: s, Text: s.Text, Section: s.Section, Line: s.Line, Accounts: []Account{}}
		if s.Heading {
			sc.Accounts = append(sc.Accounts, Account{MarkHeading, s.Section})
		}
		for _, sp := range spans {
			if sp.start < s.End && s.Start < sp.end && !containsAccount(sc.Accounts, sp.acc) {
				sc.Accounts = append(sc.Accounts, sp.acc)
			}
		}
		out = append(out, sc)
	}
	return out
}

func containsAccount(as []Account, a Account) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}
