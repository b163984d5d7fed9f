package listener_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// With KeyOrder, a record whose key has a record waiting in a retry tier
// follows it there and is handled after it; other keys are not held up.
func ExampleKeyOrder() {
	cluster, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "accounts"))
	defer cluster.Close()
	seeds := cluster.ListenAddrs()

	handled := make(chan struct{}, 3)
	failed := false
	handler := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		st, _ := retry.FromContext(ctx)
		if string(rec.Value) == "acct-1 opened" && !failed {
			failed = true
			fmt.Printf("%s: failed\n", rec.Value)
			return errors.New("ledger unavailable")
		}
		where := "main topic"
		if strings.Contains(rec.Topic, "retry") {
			where = fmt.Sprintf("tier, delivery %d", st.Attempt)
			if st.Follower {
				where += ", a follower"
			}
		}
		fmt.Printf("%s: handled (%s)\n", rec.Value, where)
		handled <- struct{}{}
		return nil
	})
	l, err := listener.New(seeds, "accounts", handler, listener.KeyOrder(),
		listener.Backoff(strategy.FixedBackoff(200*time.Millisecond)),
		listener.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	producer, _ := kgo.NewClient(kgo.SeedBrokers(seeds...))
	defer producer.Close()
	ctx, cancel := context.WithCancel(context.Background())
	for _, v := range []string{"acct-1 opened", "acct-1 deposit", "acct-2 opened"} {
		key, _, _ := strings.Cut(v, " ")
		producer.ProduceSync(ctx, &kgo.Record{Topic: "accounts", Key: []byte(key), Value: []byte(v)})
	}
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	for range 3 {
		<-handled
	}
	cancel()
	if err := <-errc; err != nil {
		fmt.Println(err)
	}
	// Output:
	// acct-1 opened: failed
	// acct-2 opened: handled (main topic)
	// acct-1 opened: handled (tier, delivery 2)
	// acct-1 deposit: handled (tier, delivery 1, a follower)
}
