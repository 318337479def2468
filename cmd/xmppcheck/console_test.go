package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	tclog "github.com/testcontainers/testcontainers-go/log"
)

// TestContainerConsole (issue 12, item 6): quiet by default — neither
// testcontainers' own lines nor the build log reach the console, only one
// line per phase, and the end of the build log appears when the run
// fails; -v passes everything through.
func TestContainerConsole(t *testing.T) {
	old := tclog.Default()
	t.Cleanup(func() { tclog.SetDefault(old) })

	var quiet bytes.Buffer
	cc := newContainerConsole(&quiet, false)
	if tclog.Default() == old {
		t.Errorf("testcontainers still logs (%T) without -v", tclog.Default())
	}
	cc.phase("target %s: starting", "prosody")
	fmt.Fprintf(cc, "#1 [internal] load build definition\n#2 RUN apt-get install prosody\n")
	if got := quiet.String(); got != "xmppcheck: target prosody: starting\n" {
		t.Errorf("quiet console shows %q", got)
	}
	cc.failed()
	if !strings.Contains(quiet.String(), "--- build log") || !strings.Contains(quiet.String(), "RUN apt-get install prosody") {
		t.Errorf("the build log is not shown on failure:\n%s", quiet.String())
	}
	big := strings.Repeat("x", maxBuildLog) + "\nLAST LINE\n"
	cc.Write([]byte(big))
	quiet.Reset()
	cc.failed()
	if !strings.Contains(quiet.String(), "LAST LINE") || quiet.Len() > maxBuildLog+200 {
		t.Errorf("kept %d bytes; want the end, at most %d", quiet.Len(), maxBuildLog)
	}

	tclog.SetDefault(old)
	var loud bytes.Buffer
	cv := newContainerConsole(&loud, true)
	fmt.Fprintf(cv, "#1 [internal] load build definition\n")
	if !strings.Contains(loud.String(), "load build definition") {
		t.Error("-v does not show the build log")
	}
	if tclog.Default() != old {
		t.Error("-v silenced testcontainers")
	}
}
