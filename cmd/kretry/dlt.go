package main

import (
	"context"
	"fmt"
	"io"
)

func dltInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kretry dlt inspect: not implemented yet")
	return exitUsage
}

func dltReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kretry dlt replay: not implemented yet")
	return exitUsage
}
