package main

import (
	"slices"
	"testing"
	"time"
)

// A run's topics go, the others stay.
func TestDeleteTopicsWithPrefix(t *testing.T) {
	env := peerEnv(t)
	ctx := peerCtx(t, time.Minute)
	for _, topic := range []string{"run-1", "run-1-retry", "run-1-dlt", "run-2"} {
		if err := env.CreateTopic(ctx, topic, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.DeleteTopicsWithPrefix(ctx, "run-1"); err != nil {
		t.Fatal(err)
	}
	adm, done, err := env.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := details.Names(); !slices.Equal(got, []string{"run-2"}) {
		t.Fatalf("topics left: %v, want [run-2]", got)
	}
}
