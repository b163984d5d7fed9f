package strategy

import (
	"errors"
	"fmt"
)

// SettingError is one setting that breaks a rule. The Validate methods of
// this package (and retry.Policy.Validate) report every problem they find,
// joined with errors.Join, each as a *SettingError, so that callers can
// say where each setting came from and tell them apart with errors.As.
type SettingError struct {
	// Key names the setting as struct tags and policy files do, with an
	// index or a field for list items: "attempts", "delays[1]",
	// "routes[0].suffix".
	Key string
	// Err is the rule and the offending value, as in
	// "must be > 1 for exponential backoff, got 0.5".
	Err error
}

// Error returns "KEY: RULE", as in
// "multiplier: must be > 1 for exponential backoff, got 0.5".
func (e *SettingError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns e.Err.
func (e *SettingError) Unwrap() error { return e.Err }

// problems collects SettingErrors.
type problems []error

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, &SettingError{Key: key, Err: fmt.Errorf(format, args...)})
}

func (ps problems) join() error { return errors.Join(ps...) }
