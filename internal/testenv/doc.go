// Package testenv holds the project's rule for tests whose environment
// lacks something (a host tool, a Docker engine, the fixture files): on a
// developer's machine the test skips with a loud message; where CI is set
// it fails, because CI must run every test (CONTRIBUTING.md, "Tests").
//
// internal/dockerenv.Require applies the same rule to Docker through
// Missing.
package testenv
