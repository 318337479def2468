package target

import (
	"fmt"
	"slices"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	itarget "github.com/xmppcheck/xmppcheck/internal/target"
)

// File is a target file (fixtures/targets/NAME/target.yaml or a user's
// own; format in CONTRIBUTING.md): how to build and start a server in a
// container and what the suite may do to it. Parsing and the container
// itself live in internal/target, shared with the load generator; this
// package adds what the suite does with them (evidence, clock, purge).
type File = itarget.File

// LoadFile reads and validates a target file, reporting every problem,
// including an evidence.store_format the suite cannot parse.
func LoadFile(path string) (*File, error) {
	return itarget.LoadFile(path, itarget.WithCheck(checkStoreFormat))
}

func checkStoreFormat(f *File) []error {
	sf := evidence.StoreFormat(f.Evidence.StoreFormat)
	if sf != "" && !slices.Contains(evidence.StoreFormats(), sf) {
		return []error{fmt.Errorf("evidence.store_format %q is not one of %v", sf, evidence.StoreFormats())}
	}
	return nil
}
