// Package dockerenv prepares the process for testcontainers-go in this
// project's environment and decides what a test does when no Docker engine
// answers: skip loudly on a developer machine, fail when CI is set.
package dockerenv

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/testenv"
)

// Setup sets the environment testcontainers-go needs here: no Ryuk reaper
// (its image cannot be pulled without a registry) and the Docker host
// pinned to loopback (otherwise the library guesses the VM's gateway, which
// must never be dialled). Values already set by the user are kept.
func Setup() {
	setDefault("TESTCONTAINERS_RYUK_DISABLED", "true")
	setDefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
}

func setDefault(k, v string) {
	if _, ok := os.LookupEnv(k); !ok {
		os.Setenv(k, v)
	}
}

var (
	once      sync.Once
	available bool
	why       string
)

// Available reports whether a Docker engine answers, and why not. The answer
// is computed once per process.
func Available() (bool, string) {
	once.Do(func() {
		Setup()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
		if err != nil {
			why = "docker info failed: " + err.Error() + ": " + string(out)
			return
		}
		available = true
	})
	return available, why
}

// Require skips t with a loud message when no Docker engine answers, or
// fails it when CI is set (tests that need Docker must run in CI).
func Require(t testing.TB) {
	t.Helper()
	Setup()
	if ok, why := Available(); !ok {
		testenv.Missing(t, "no Docker engine answers ("+why+")")
	}
}
