// Package dltops reads and replays dead-letter topics (DLTs): the machinery
// behind "kretry dlt inspect" and "kretry dlt replay". It has no public
// promise; the CLI in cmd/kretry does flags, output and wiring.
//
// # Reading
//
// Every read is a direct partition consumer (kgo.ConsumePartitions, no
// group), so reading a DLT joins no group and commits nothing; Scan refuses
// client options that name a group (ErrClientGroup). A read covers fixed
// offset ranges (see Ranges): from the log start, or the first offset at
// or after a --since time, to the end offsets listed when the command
// starts, so it ends even while the topic grows, and an empty partition is
// not read at all. DLTs are read with isolation read_committed up to their
// last stable offset (ListRanges): the records of aborted transactions (a
// DLT publisher that aborted) are neither counted nor replayed, and a
// transaction still open is left out. The target topics a resume searches
// are read read_uncommitted, up to their high watermark. Transaction
// markers are kept internally so that a marker at the end of a partition
// still counts as reaching it.
//
// Offsets deleted before they were read (a range starting before the log
// start, retention or DeleteRecords moving it during the read, a truncated
// log) are never skipped silently: Scan reports them to ScanOptions.Lost,
// inspect counts them in Report.Lost and a replay in Totals.Lost. A
// partition that makes no progress for the idle timeout (offline, or a
// compacted tail) fails the read with ErrStalled naming it.
//
// Each record is decoded with retry.Decode (Decode, Info). A record whose
// retry headers do not decode is never an error of the whole read: it is
// counted under the error type "(corrupt headers)" and kept for --to.
//
// # Replay and its resume guarantee
//
// Replay sends the selected DLT records back so that only the consumer
// group that dead-lettered each of them handles it again. A record carrying
// a group (retry.State.Group, the kretry-group header) goes to the first
// retry tier of that group's listener of its original topic
// (ReplayConfig.FirstTiers, from the group's policy) as its second delivery,
// due at once (TierRecord): the listeners of other groups reading that tier
// skip it. A record without a group (Spring Kafka's, or an older kretry's),
// or one whose group's plan has no retry tier, goes to its original topic
// with every retry header removed, where every group reading the topic sees
// it; with ReplayConfig.To every record goes to that topic so. Each gets a
// fresh timestamp and three audit headers (retry.HeaderReplayRun,
// HeaderReplayedFrom, HeaderReplayedAt). Result.Totals.TierGroups and
// Result.Readers say which groups will see the records of each target. A
// replay has a run ID and is resumable: running the same command again
// after a crash or an interrupt continues where the first attempt stopped.
//
// The guarantee: within one run ID, each selected DLT record is written to
// its target at most once, and a run that finishes has written each of them
// exactly once except those it counts as skipped (listed with the reason)
// or lost (deleted before they were read). It holds under these
// assumptions:
//
//  1. The state file survives between attempts, and one attempt runs at a
//     time (the lock file enforces it where flock exists: Unix).
//  2. Nobody else writes records carrying the run ID to the target topics.
//  3. The records an attempt sent stay in the target topics until a resume
//     has read them. A resume that finds them possibly gone (a log start past
//     the checkpointed end offset, an end offset below it, a partition that
//     disappeared) stops with ErrUnverifiable instead of guessing.
//  4. A broker appends a produce request within the produce request timeout
//     (ProduceRequestTimeout plus RequestTimeoutOverhead) of receiving it, or
//     never.
//  5. A record appended beyond a partition's high watermark is replicated or
//     truncated within ReplicationMargin (the cluster's
//     replica.lag.time.max.ms, 30 s by default), and unclean leader election
//     does not bring back a truncated one.
//  6. The clocks of the machines that run attempts of the run agree, and do
//     not jump, to within a small part of the waits below.
//
// Kafka has no transaction that spans reading a file and producing, and an
// idempotent producer only deduplicates the retries of one producer session,
// not a new process. So the state is split between a local state file and
// the target topics themselves, and the second is searched on resume:
//
//   - The state file, <dir>/kretry-replay-<run>.json, is replaced atomically
//     (written to a temporary file, fsynced, renamed over the old one, and
//     the directory fsynced) at each checkpoint. A checkpoint records, per
//     DLT partition, the next offset to consider and the end offset of the
//     run (fixed by the first attempt, so an interrupted run covers the same
//     records as one that was not), the selection (DLTs, filters, --to) a
//     resume must match, for every target topic-partition sent to so far its
//     end offset (high watermark) at the checkpoint, and how the attempt
//     stands (AttemptEnd).
//   - A checkpoint is written only after every record handed to the producer
//     before it has been acknowledged (acks=all, so below the high
//     watermark) or refused and skipped, so every selected DLT record below
//     the recorded offsets has landed or is counted. Each attempt writes one
//     before its first hand-over, and before the first send to a target
//     topic not yet in the state a checkpoint adding that topic's end offsets
//     is written.
//   - Every record sent after a checkpoint is appended to a target partition
//     after the checkpoint listed its end offset, so it lands at an offset at
//     or above the recorded one (a partition added since is read from
//     offset 0).
//   - Bounded delivery. The producer stamps each record with its hand-over
//     time and never writes a request carrying it later than DeliveryTimeout
//     after that (kgo.RecordDeliveryTimeout with
//     kgo.AllowIdempotentProduceCancellation, so that it also holds for
//     records in flight); by assumption 4 the record is appended, if ever,
//     within the delivery bound (DeliveryTimeout plus the produce request
//     timeout) of its hand-over, and by assumption 5 it is below the high
//     watermark, or gone for good, ReplicationMargin later. Each checkpoint
//     records a lease, HandOverBy (its time plus twice the checkpoint
//     interval): the attempt hands no record over at or after it without
//     first extending it in the state file. An attempt that ends with every
//     record acknowledged writes Clean; one that ends otherwise closes its
//     producer and writes the time of its last hand-over.
//   - On resume, if the latest attempt did not end cleanly, Replay first
//     waits (ReplayConfig.OnWait says until when and why; ctx stops it)
//     until its last hand-over, or, after a crash, its HandOverBy, plus its
//     delivery bound plus ReplicationMargin. Only then does it list the
//     targets' end offsets: each record of that attempt is now either below
//     them or will never be written. It reads each target partition from
//     its recorded end offset to that end, read_uncommitted, and collects
//     the HeaderReplayedFrom values of the records whose HeaderReplayRun is
//     this run. Those DLT records were sent after the last checkpoint by an
//     attempt that did not get to write the next one; they are skipped and
//     counted as already sent. Records that attempt had handed to the
//     producer but that never landed are not found, and are sent. Listing
//     the end offsets twice, a second apart, would add nothing: after the
//     wait nothing of the attempt can arrive, and before it a second proves
//     nothing.
//   - Sources found this way but not yet passed when the next checkpoint is
//     written are kept in the state (its "sentAhead" list), because that
//     checkpoint's end offsets lie after them. Without the list, a resume
//     that checkpoints before reaching them (DLT partitions are read in a
//     different interleaving on each attempt) and then crashes would lose
//     them, and a third attempt would send them again.
//   - The idempotent producer (kgo's default) removes the duplicates its own
//     retries could write within one attempt; a record refused for itself
//     (MESSAGE_TOO_LARGE, INVALID_RECORD) was not written, and is sent again
//     once, alone, before it is skipped (SkipRejected).
//
// A record that cannot be sent is skipped, counted and listed (Totals
// SkippedRecords), never silently, and the next attempt does not stop at
// it: no original topic in its headers (SkipNoTopic), an original topic
// that does not exist (SkipNoSuchTopic), a group the policy has no listener
// of for the original topic (SkipNoListener), a group's first retry tier
// that does not exist (SkipNoSuchTier), or refused by the cluster even
// alone (SkipRejected). A finished run writes the status "done"; running it
// again sends nothing and says so. The policy's first tiers are part of the
// selection: a resume with another policy is refused (ErrSelectionChanged).
//
// # Usage
//
//	res, err := dltops.Replay(ctx, dltops.ReplayConfig{
//		Run:        "fix-1234",
//		DLTs:       []string{"orders-dlt"},
//		Filter:     dltops.Filter{ErrorTypes: []string{"*net.OpError"}},
//		FirstTiers: map[dltops.ListenerKey]string{{Topic: "orders", Group: "billing"}: "orders-retry-1000"},
//		ClientOpts: []kgo.Opt{kgo.SeedBrokers("localhost:9092")},
//	})
//	if errors.Is(err, dltops.ErrInterrupted) {
//		// res says how far it got; the same call resumes it.
//	}
//
// # Why a fresh timestamp
//
// A record replayed to its original topic carries no retry header, so a
// kretry listener sees its first delivery (attempt 1); one replayed to a
// retry tier carries a fresh retry state (attempt 2, the lowest a tier
// record may carry, so its full set of attempts but the first remains). The
// listener measures a policy's time budget (Timeout) from the record's
// timestamp, or from a tier record's kretry-original-timestamp, so a
// replayed record that kept its original timestamp would, on its first
// failure, find its budget long spent and go straight back to the DLT with
// reason "timeout". A tier record's original timestamp and first failure
// are therefore the replay's time too. An old
// timestamp could also make time-based retention delete it early, or be
// refused by a broker's message.timestamp.before.max.ms. The replay stamps
// the time it sends the record, the same instant as HeaderReplayedAt.
package dltops
