//go:build !unix

package dltops

// lock is a no-op where flock is not available: the user must not run two
// attempts of one run at once (ReplayConfig.StateDir and "kretry dlt replay
// --help" say so).
func lock(string) (func(), error) { return func() {}, nil }
