package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

const versionHelp = `Usage: kretry version

Prints the version of kretry the binary was built from and the Go version
that built it: vX.Y.Z when installed with
"go install github.com/kretry/kretry/cmd/kretry@vX.Y.Z", a pseudo-version
such as v0.0.0-20260102150405-abcdef123456 (+dirty with local changes) when
built in a clone, or (devel) when the build recorded no version control
information (-buildvcs=false).

Exit status: 0, or 2 on a usage error.
`

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	pos, code, done := parse(fs, args, versionHelp, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usagef(stderr, "version", "unexpected argument %q", pos[0])
	}
	fmt.Fprintf(stdout, "kretry %s %s\n", buildVersion(), runtime.Version())
	return exitOK
}

// buildVersion is the main module's version as the build recorded it.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" {
		return "(devel)"
	}
	return bi.Main.Version
}
