//go:build !unix

package dockerenv

import "context"

// lockFile is a no-op where flock(2) does not exist; base images are only
// made on Linux (debootstrap).
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
