//go:build !linux

package main

import "time"

// waiter ends a wait at a deadline. Outside Linux it is time.Sleep, whose
// precision S7 measures and reports (wait_linux.go explains why Linux
// needs more).
type waiter struct{}

func newWaiter() *waiter { return &waiter{} }

// until returns at deadline, or after.
func (*waiter) until(deadline time.Time) { time.Sleep(time.Until(deadline)) }

func (*waiter) close() {}
