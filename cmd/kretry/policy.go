package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/kretry/kretry/config"
)

const validateHelp = `Usage: kretry policy validate [--errors NAMES] [--json] FILE

Checks the policy file FILE strictly (unknown keys, wrong types, invalid
values and policies, duplicate topics) and prints its listeners' resolved
policies — the file's defaults and each entry over kretry's defaults — as a
policy file with every setting explicit. Problems are printed to standard
error as "file:line:col: key: rule", and the exit status is 1.

Flags:
  --errors NAMES  comma-separated error names the program registers; names
                  used in include, exclude or routes must be among them.
                  Without it, names are not checked.
  --json          print JSON instead of YAML

Exit status: 0 valid, 1 invalid, 2 usage error (also a FILE that cannot be
read).
`

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy validate", flag.ContinueOnError)
	errorsFlag := fs.String("errors", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, code, done := parse(fs, args, validateHelp, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 1 {
		return usagef(stderr, "policy validate", "want one FILE, got %d arguments", len(pos))
	}
	name := pos[0]
	f, err := config.Load(name)
	if err != nil {
		if unreadable(err) {
			return usagef(stderr, "policy validate", "FILE: cannot read the policy file: %v", errors.Unwrap(err))
		}
		report(stderr, "policy validate", name, err, nil)
		return exitInvalid
	}
	reg, err := registry(*errorsFlag, f.ErrorNames())
	if err != nil {
		return usagef(stderr, "policy validate", "--errors: %v", err)
	}
	specs, err := f.Specs(reg)
	if err != nil {
		report(stderr, "policy validate", name, err, nil)
		return exitInvalid
	}
	var out []byte
	if *asJSON {
		out, err = config.MarshalJSON(specs...)
	} else {
		out, err = config.MarshalYAML(specs...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kretry policy validate: %v\n", err)
		return exitInvalid
	}
	stdout.Write(out)
	return exitOK
}
