package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// targetPath resolves the target flags conform and load share: --target
// NAME is fixtures/targets/NAME/target.yaml under --fixtures DIR or the
// enclosing checkout; otherwise it is --target-file FILE. Errors are usage
// errors naming the command.
func targetPath(cmd, name, file, fixtures string) (string, error) {
	if name == "" {
		return file, nil
	}
	dir := fixtures
	if dir == "" {
		d, err := findFixtures()
		if err != nil { // outside a checkout: the targets built into the binary
			if d, err = embeddedFixtures(); err != nil {
				return "", usageErr("%s: --target %s: %v (use --fixtures DIR or --target-file)", cmd, name, err)
			}
		}
		dir = d
	}
	file = filepath.Join(dir, name, "target.yaml")
	if _, err := os.Stat(file); err != nil {
		return "", usageErr("%s: --target %s: %v%s", cmd, name, err, knownTargets(dir))
	}
	return file, nil
}

// countSet counts the non-empty values (flags of which only one may be
// given).
func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

// findFixtures looks for fixtures/targets in the working directory and its
// parents.
func findFixtures() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "fixtures", "targets")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no fixtures/targets directory here or above")
		}
		dir = parent
	}
}

func knownTargets(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}
