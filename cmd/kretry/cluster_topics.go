package main

import (
	"context"
	"fmt"
	"io"
)

func topicsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kretry topics create: not implemented yet")
	return exitUsage
}

func topicsVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kretry topics verify: not implemented yet")
	return exitUsage
}

func tiersLag(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kretry tiers lag: not implemented yet")
	return exitUsage
}
