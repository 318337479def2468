package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// commit is set at build time with -ldflags "-X main.commit=…"; otherwise
// it comes from the VCS stamp Go writes into the binary, when there is one.
var commit = ""

// versionString is "VERSION (commit C, GOVERSION)".
func versionString() string {
	c, modified := commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			version = info.Main.Version // go install …@v1.2.3
		}
	}
	if c == "" {
		c = "unknown"
	} else if modified {
		c += "+modified"
	}
	return fmt.Sprintf("%s (commit %s, %s)", version, c, runtime.Version())
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the commit xmppcheck was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "xmppcheck version "+versionString())
			return nil
		},
	}
}
