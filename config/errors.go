package config

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every problem this package reports is an *Error; these
// are wrapped by the ones that have a common cause, so errors.Is tells
// them apart.
var (
	// ErrUnknownKey is wrapped by the error for a key that is not a
	// setting: in a struct tag, a policy file or a route.
	ErrUnknownKey = errors.New("unknown key")
	// ErrDuplicate is wrapped by the error for a key, topic, named error
	// or route suffix given twice where it must be unique.
	ErrDuplicate = errors.New("duplicate")
	// ErrNotRegistered is wrapped by the error for a named error (in
	// include, exclude or routes) that the Registry does not hold.
	ErrNotRegistered = errors.New("not registered")
)

// Pos says where a setting was written: a position in a policy file, or a
// struct field whose kretry tag holds it. The zero Pos stands for the
// listener's Go options or the built-in defaults.
type Pos struct {
	// File is the policy file's name as given to Parse or Load, or
	// another source such as "flags".
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	// Struct is the struct type holding a tagged field, as in
	// "main.Handlers"; empty for a file.
	Struct string
	// Field is the tagged struct field's name, as in "Orders".
	Field string
}

// String formats p as "file:line:column" (line and column when known), as
// "main.Handlers.Orders (kretry tag)" for a struct tag, or as "Go options
// or defaults" for the zero Pos.
func (p Pos) String() string {
	switch {
	case p.Struct != "" || p.Field != "":
		return p.Struct + "." + p.Field + " (kretry tag)"
	case p.File == "":
		return "Go options or defaults"
	case p.Line <= 0:
		return p.File
	case p.Column <= 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// IsZero reports whether p is the zero Pos: a value that came from Go
// options or the defaults.
func (p Pos) IsZero() bool { return p == Pos{} }

// Error is one problem with a declaration: where it is, which key, and the
// rule it breaks. Functions of this package that can find several problems
// return them all, joined with errors.Join, so that one run shows every
// mistake.
type Error struct {
	// Pos is where the offending value was written.
	Pos Pos
	// Key is the setting's path, as in "attempts", "exclude[1]" or, in a
	// policy file, "listeners[2].maxDelay"; empty when the problem is the
	// declaration as a whole.
	Key string
	// Err is the rule that was broken. It may wrap ErrUnknownKey,
	// ErrDuplicate or ErrNotRegistered.
	Err error
}

// Error formats e as "POS: KEY: RULE", for example
// "policy.yaml:7:14: listeners[1].attempts: must be >= 1 and <= 32767, got 0".
func (e *Error) Error() string {
	if e.Key == "" {
		return e.Pos.String() + ": " + e.Err.Error()
	}
	return e.Pos.String() + ": " + e.Key + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// errorf builds an *Error; %w in format wraps as fmt.Errorf does.
func errorf(pos Pos, key, format string, args ...any) *Error {
	return &Error{Pos: pos, Key: key, Err: fmt.Errorf(format, args...)}
}

// joinErrors joins errs in order; nil when there are none.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}
