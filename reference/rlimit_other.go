//go:build !unix

package reference

import "errors"

// RaiseFileLimit is not supported on this platform.
func RaiseFileLimit() (uint64, error) { return 0, errors.New("reference: no file limit to raise") }

func fileLimit() (uint64, error) { return 0, errors.New("reference: no file limit") }
