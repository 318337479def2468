package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// HostPackages is where CI's host tools are listed; RequireTool names it
// when no other way to install a tool is given.
const HostPackages = "ci/host-packages.txt"

// InCI reports whether the CI environment variable is set to a true value
// (anything but "", "0", "false" and "no").
func InCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// Missing ends t because what it needs is missing: what completes the
// sentence "CI is set but …" (for example "openssl is not installed").
// Where CI is set t fails; elsewhere it skips with a message that starts
// with SKIPPED.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI is set but %s", what)
	}
	t.Skipf("SKIPPED: %s; set CI=true to make this a failure", what)
}

// RequireTool returns the path of the first of names found on PATH, or
// calls Missing naming them and install, how to install one (HostPackages
// when empty).
func RequireTool(t testing.TB, install string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if install == "" {
		install = HostPackages
	}
	Missing(t, strings.Join(names, " or ")+" is not installed ("+install+")")
	return ""
}
