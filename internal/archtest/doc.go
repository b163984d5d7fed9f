// Package archtest holds no code, only a test that keeps kretry's packages
// layered as documented: imports point down, strategy ← retry ← dlt ←
// listener; nothing in the library imports listener but its test kit
// (listener/kretrytest); nothing but examples/ imports the test kit; and
// the core packages stay free of metrics and tracing libraries and of the
// fake cluster.
//
// The test asks the go command for each package's dependencies:
//
//	go test ./internal/archtest
//
// It is skipped when the go binary of the running toolchain cannot be found.
package archtest
