package target

import itarget "github.com/xmppcheck/xmppcheck/internal/target"

// Lint reports every problem of a target file at once, each at its line
// and column with a hint (`xmppcheck target lint`), including an
// evidence.store_format the suite cannot parse.
func Lint(path string) []itarget.Problem {
	return itarget.Lint(path, itarget.WithCheck(checkStoreFormat))
}
