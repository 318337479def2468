package main

import (
	"fmt"
	"io"
	"sync"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/xmppcheck/xmppcheck/conformance/report"
)

// maxBuildLog is how much of the end of a build log quiet mode keeps, to
// show when the run fails.
const maxBuildLog = 64 << 10

// containerConsole decides what a container target prints. Verbose: the
// container library's own lines and the whole build log go to standard
// error. Quiet (the default): neither; one line per phase says what is
// happening, and the end of the build log is kept and shown only if the
// run fails.
type containerConsole struct {
	stderr  io.Writer
	verbose bool

	mu   sync.Mutex
	kept []byte
}

func newContainerConsole(stderr io.Writer, verbose bool) *containerConsole {
	if !verbose {
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	return &containerConsole{stderr: stderr, verbose: verbose}
}

// Write keeps the build log (quiet) or passes it on (verbose).
func (c *containerConsole) Write(p []byte) (int, error) {
	if c.verbose {
		return c.stderr.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kept = append(c.kept, p...)
	if n := len(c.kept) - maxBuildLog; n > 0 {
		c.kept = append(c.kept[:0], c.kept[n:]...)
	}
	return len(p), nil
}

// phase prints one progress line.
func (c *containerConsole) phase(format string, args ...any) {
	fmt.Fprintf(c.stderr, "xmppcheck: "+format+"\n", args...)
}

// failed shows the kept end of the build log (quiet mode), once.
func (c *containerConsole) failed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verbose || len(c.kept) == 0 {
		return
	}
	fmt.Fprintf(c.stderr, "--- build log (last %d bytes; all of it with -v) ---\n%s", len(c.kept), c.kept)
	if c.kept[len(c.kept)-1] != '\n' {
		fmt.Fprintln(c.stderr)
	}
	c.kept = nil
}

// targetWords describes the target for a person: "the reference server
// (xmppcheck serve) in-process …", "a live deployment at …".
func targetWords(tg interface{ Info() report.Target }) string {
	if tg == nil {
		return "no target"
	}
	return report.TargetWords(tg.Info())
}
