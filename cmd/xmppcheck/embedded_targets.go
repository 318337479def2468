package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xmppcheck/xmppcheck/fixtures"
	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/target"
)

// embeddedFixtures writes the fixture targets built into the binary to
// the user's cache directory (once per content) and returns their folder.
func embeddedFixtures() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "xmppcheck")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return fixtures.ExtractTargets(dir)
}

// resolveTarget is targetPath for commands without a name of their own.
func resolveTarget(name, file, fixturesDir string) (path, shown string, err error) {
	p, err := targetPath("target", name, file, fixturesDir)
	if err != nil {
		return "", "", err
	}
	shown = file
	if name != "" {
		shown = name
	}
	return p, shown, nil
}

// imageInspect reports whether the engine has image locally (a variable
// so tests can answer without an engine).
var imageInspect = dockerenv.ImageExists

// checkNoPull refuses a target whose prebuilt image: is not present
// locally unless --pull was given: xmppcheck never fetches an image from
// a registry on its own.
func checkNoPull(ctx context.Context, f *target.File, pull bool) error {
	if pull || f.Build != nil || f.Image == "" {
		return nil
	}
	ok, err := imageInspect(ctx, f.Image)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("image %s is not present locally and xmppcheck never pulls on its own (give --pull, or docker pull it first)", f.Image)
	}
	return nil
}
