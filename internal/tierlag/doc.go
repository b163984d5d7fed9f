// Package tierlag measures how many records wait in a consumer group's retry
// tiers and whether they are due: the numbers behind `kretry tiers lag`, for
// any other reader (a metrics gauge, for instance).
//
// For each partition of each tier topic, Measure takes the group's committed
// offset (or the log start offset when the group has committed none there,
// where a kretry listener starts) and the end offset, and reads the records
// between them with a plain consumer that never joins the group and never
// commits. Each record is classified by its kretry-due header:
//
//   - NotDue: its due time is after Now; the listener will deliver it later.
//   - Overdue: its due time has passed; the listener should have delivered it.
//   - Corrupt: its kretry headers do not decode (or it has none); the
//     listener dead-letters it without calling the handler.
//   - Unread: not read, because of Options.MaxRead, Options.StopAtNotDue,
//     Options.IdleTimeout, a read error, or because no Options.ReaderOpts were
//     given; its due time is unknown.
//   - Followers: of the NotDue and Overdue records, those a key-ordered
//     listener queued behind an earlier record of their key (their
//     kretry-follows header); counted in NotDue or Overdue as well.
//   - Lost: deleted (retention, DeleteRecords) while Measure read it. The
//     reader goes on from the new log start, as a listener does; this is not
//     an error of the partition.
//
// A partition whose committed offset the group's offset fetch could not
// return (a per-partition error) is reported in its Err with nothing
// counted: it is not taken for a partition without a commit.
//
// Usage:
//
//	adm := kadm.NewClient(cl)
//	rep, err := tierlag.Measure(ctx, adm, "billing",
//		[]string{"orders-retry-1000", "orders-retry-2000"},
//		tierlag.Options{ReaderOpts: []kgo.Opt{kgo.SeedBrokers(seeds...)}})
//	if err != nil {
//		return err
//	}
//	for _, t := range rep.Topics {
//		tot := t.Total()
//		fmt.Println(t.Topic, tot.Waiting, tot.NotDue, tot.Overdue, tot.OldestOverdue(rep.Now))
//	}
package tierlag
