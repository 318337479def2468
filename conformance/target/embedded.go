package target

import (
	"errors"

	"github.com/xmppcheck/xmppcheck/spec"
)

// ErrEmbeddedUnavailable is returned while the reference server (package
// reference) does not yet offer what the embedded target needs.
var ErrEmbeddedUnavailable = errors.New("target: the embedded reference server is not available in this build yet; use --target, --target-file or --remote")

// NewEmbedded returns the embedded target: the reference server in-process
// on loopback with temporary data and key directories, its log written to
// a temporary file (evidence) and the test clock.
func NewEmbedded(pol *spec.Policy) (Target, error) {
	return nil, ErrEmbeddedUnavailable
}
