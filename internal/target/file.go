package target

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is a target file: how to build and start a server in a container
// and what a harness may do to it.
type File struct {
	// Dir is the directory of the file; relative paths resolve against it.
	Dir string `yaml:"-"`
	// Path is the file itself.
	Path string `yaml:"-"`

	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Image       string            `yaml:"image"`
	Build       *Build            `yaml:"build"`
	Domain      string            `yaml:"domain"`
	Ports       Ports             `yaml:"ports"`
	Wait        Wait              `yaml:"wait"`
	Start       StartLimits       `yaml:"start"`
	Env         map[string]string `yaml:"env"`
	Accounts    Accounts          `yaml:"accounts"`
	Evidence    Evidence          `yaml:"evidence"`
	Clock       *Clock            `yaml:"clock"`
	Purge       [][]string        `yaml:"purge"`
	Expected    string            `yaml:"expected"`
}

// Build says how to build the image.
type Build struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
	// GoBinaries maps a file name in the build context to a Go package of
	// this module compiled statically for the image ("xmppcheck":
	// "./cmd/xmppcheck"), for images FROM scratch.
	GoBinaries map[string]string `yaml:"go_binaries"`
}

// Ports are container ports; 0 when the server has no such listener.
type Ports struct {
	C2S    int `yaml:"c2s"`
	C2STLS int `yaml:"c2s_tls"`
	S2S    int `yaml:"s2s"`
	HTTP   int `yaml:"http"`
}

// Wait says when the server is ready.
type Wait struct {
	Log     string   `yaml:"log"`
	Port    string   `yaml:"port"`
	Timeout Duration `yaml:"timeout"`
}

// DefaultStartTimeout bounds building the image and starting the
// container when the target file gives no start.timeout: many minutes,
// because a cold build of a server image (packages installed from a
// mirror) takes minutes on a slow machine.
const DefaultStartTimeout = 20 * time.Minute

// StartLimits bound the whole start: building the image (when the file
// says how), starting the container and waiting until it is ready.
type StartLimits struct {
	// Timeout bounds the whole start (default DefaultStartTimeout);
	// wait.timeout, inside it, bounds only the wait for readiness.
	Timeout Duration `yaml:"timeout"`
}

// StartTimeout is the time the whole start may take: start.timeout, or
// DefaultStartTimeout when the file gives none.
func (f *File) StartTimeout() time.Duration {
	if d := time.Duration(f.Start.Timeout); d > 0 {
		return d
	}
	return DefaultStartTimeout
}

// Accounts says how test accounts are made.
type Accounts struct {
	// Create and Delete are commands run in the container, with
	// placeholders {user}, {domain}, {password}.
	Create []string `yaml:"create"`
	Delete []string `yaml:"delete"`
	// Stdin, when set, is written (placeholders expanded) to the create
	// command's standard input: for admin tools that read the password
	// there and never from the command line ("{password}\n" for
	// `xmppcheck admin user add`).
	Stdin string `yaml:"stdin"`
	// IBR: accounts are registered in-band (XEP-0077).
	IBR bool `yaml:"ibr"`
}

// Evidence says where the server keeps its logs and data (read by the
// conformance suite).
type Evidence struct {
	// Logs are files in the container; "stdout" is the container output.
	Logs []string `yaml:"logs"`
	// Data are directories copied out of the container and scanned.
	Data []string `yaml:"data"`
	// StoreFormat names how credential records are stored (the
	// conformance suite's evidence.StoreFormat values; WithCheck
	// validates it).
	StoreFormat string `yaml:"store_format"`
	// Dump runs before the data is copied (a database dump to a file).
	Dump []string `yaml:"dump"`
	// Decrypted are commands whose standard output is the server's own
	// decrypted export of a store encrypted at rest (`xmppcheck admin
	// dump`, `xmppcheck admin dump --scram`).
	Decrypted [][]string `yaml:"decrypted"`
	// Credentials is a command whose standard output is credential
	// records in the neutral line format (one record a line, key=value
	// pairs; CONTRIBUTING.md), for stores no built-in format reads.
	Credentials []string `yaml:"credentials"`
}

// Clock says how the server's time is moved.
type Clock struct {
	// Advance runs in the container with {by}, {by_seconds} and
	// {total_seconds}.
	Advance []string `yaml:"advance"`
}

// Duration is a YAML duration ("60s", "2m").
type Duration time.Duration

// UnmarshalYAML accepts Go durations.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use 60s or 2m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// LoadOption configures LoadFile.
type LoadOption func(*loadConfig)

type loadConfig struct {
	checks []func(*File) []error
}

// WithCheck adds a validation of the caller's own (the conformance suite
// checks evidence.store_format against the formats it can parse); its
// problems are reported together with LoadFile's.
func WithCheck(check func(*File) []error) LoadOption {
	return func(c *loadConfig) { c.checks = append(c.checks, check) }
}

// LoadFile reads and validates a target file, reporting every problem
// (unknown keys included) in one error.
func LoadFile(path string, opts ...LoadOption) (*File, error) {
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("target: %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	f.Path, f.Dir = abs, filepath.Dir(abs)
	errs := f.validate()
	for _, check := range cfg.checks {
		errs = append(errs, check(&f)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("target: %s: %w", path, err)
	}
	return &f, nil
}

func (f *File) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.Name == "" {
		bad("name is required")
	}
	if f.Domain == "" {
		bad("domain is required")
	}
	if (f.Image == "") == (f.Build == nil) {
		bad("give exactly one of image and build")
	}
	if f.Ports.C2S == 0 {
		bad("ports.c2s is required")
	}
	for _, name := range portNames {
		if p := f.Port(name); p < 0 || p > 65535 {
			bad("ports.%s: %d is not a port", name, p)
		}
	}
	if f.Wait.Log == "" && f.Wait.Port == "" {
		bad("wait needs log or port")
	}
	if f.Start.Timeout < 0 {
		bad("start.timeout: %s is negative", time.Duration(f.Start.Timeout))
	}
	if f.Start.Timeout > 0 && f.Wait.Timeout > f.Start.Timeout {
		bad("wait.timeout (%s) is longer than start.timeout (%s), which bounds the whole start", time.Duration(f.Wait.Timeout), time.Duration(f.Start.Timeout))
	}
	if f.Wait.Port != "" && f.Port(f.Wait.Port) == 0 {
		bad("wait.port %q names no port of ports", f.Wait.Port)
	}
	if !f.Accounts.IBR && (len(f.Accounts.Create) == 0 || len(f.Accounts.Delete) == 0) {
		bad("accounts needs create and delete commands, or ibr: true")
	}
	if f.Accounts.Stdin != "" && len(f.Accounts.Create) == 0 {
		bad("accounts.stdin needs accounts.create")
	}
	for i, d := range f.Evidence.Decrypted {
		if len(d) == 0 {
			bad("evidence.decrypted[%d] is an empty command", i)
		}
	}
	if f.Clock != nil && len(f.Clock.Advance) == 0 {
		bad("clock.advance is required when clock is given")
	}
	if f.Build != nil {
		ctxDir := filepath.Join(f.Dir, f.Build.Context)
		df := f.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(ctxDir, df)); err != nil {
			bad("build: %v", err)
		}
	}
	if f.Expected != "" {
		if _, err := os.Stat(filepath.Join(f.Dir, f.Expected)); err != nil {
			bad("expected: %v", err)
		}
	}
	return errs
}

// portNames are the names of Ports, as in the file.
var portNames = []string{"c2s", "c2s_tls", "s2s", "http"}

// Port returns the container port called name ("c2s", "c2s_tls", "s2s",
// "http"), 0 when there is none.
func (f *File) Port(name string) int {
	switch name {
	case "c2s":
		return f.Ports.C2S
	case "c2s_tls":
		return f.Ports.C2STLS
	case "s2s":
		return f.Ports.S2S
	case "http":
		return f.Ports.HTTP
	}
	return 0
}

// Expand replaces {key} placeholders in each argument.
func Expand(args []string, vals map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range vals {
			a = strings.ReplaceAll(a, "{"+k+"}", v)
		}
		out[i] = a
	}
	return out
}

// Seconds formats d as whole seconds, for {by_seconds}-style placeholders.
func Seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// ImageTag is the local image tag a built target gets.
func ImageTag(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return "xmppcheck-target-" + b.String() + ":latest"
}
