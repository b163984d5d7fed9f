// Package dltops reads and replays dead-letter topics (DLTs): the machinery
// behind "kretry dlt inspect" and "kretry dlt replay". It has no public
// promise; the CLI in cmd/kretry does flags, output and wiring.
//
// # Reading
//
// Every read is a direct partition consumer (kgo.ConsumePartitions, no
// group), so reading a DLT joins no group and commits nothing. A read covers
// fixed offset ranges (see Ranges): from the log start, or the first offset
// at or after a --since time, to the end offsets listed when the command
// starts, so it ends even while the topic grows, and an empty partition is
// not read at all. Records are read with isolation read_uncommitted (the
// high watermark, not the last stable offset, is the end), and transaction
// markers are kept internally so that a marker at the end of a partition
// still counts as reaching it.
//
// Each record is decoded with retry.Decode (Decode, Info). A record whose
// retry headers do not decode is never an error of the whole read: it is
// counted under the error type "(corrupt headers)" and kept for --to.
//
// # Replay and its resume guarantee
//
// Replay sends the selected DLT records back to their original topic (or to
// one chosen topic) with every retry header removed, a fresh timestamp and
// three audit headers (retry.HeaderReplayRun, HeaderReplayedFrom,
// HeaderReplayedAt). A replay has a run ID and is resumable: running the same
// command again after a crash or an interrupt continues where the first
// attempt stopped and never sends a DLT record twice for the same run ID.
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
//     resume must match, and, for every target topic-partition sent to so
//     far, its end offset at the checkpoint.
//   - A checkpoint is written only after the producer has been flushed and
//     every send before it acknowledged, so every selected DLT record below
//     the recorded offsets has landed. Before the first send to a target
//     topic not yet in the state, a checkpoint adding that topic's end
//     offsets is written.
//   - Every record sent after a checkpoint is appended to a target
//     partition after the checkpoint listed its end offset, so it lands at
//     an offset at or above the recorded one (a partition added since is
//     read from its start). On resume, each target partition is read from
//     its recorded end offset to its end offset listed at resume time, with
//     read_uncommitted, and the HeaderReplayedFrom values of the records
//     whose HeaderReplayRun is this run are collected. Those DLT records
//     were sent after the last checkpoint by an attempt that did not get to
//     write the next one; they are skipped and counted as already sent.
//     Records that attempt had handed to the producer but that never landed
//     are not found, and are sent.
//   - Sources found this way but not yet passed when the next checkpoint is
//     written are kept in the state (its "sentAhead" list), because that
//     checkpoint's end offsets lie after them. Without the list, a resume
//     that checkpoints before reaching them (DLT partitions are read in a
//     different interleaving on each attempt) and then crashes would lose
//     them, and a third attempt would send them again.
//   - The idempotent producer (kgo's default) removes the duplicates its own
//     retries could write within one attempt; a lock file keeps two
//     attempts of one run from running at once.
//
// The guarantee needs the target records to stay readable between the
// crash and the resume (retention must not delete them first), nobody else
// to write records carrying this run ID, and the crashed process's produce
// requests to have been applied by the time the resume lists the target end
// offsets (a request a broker still held queued after the process died and
// appended later would not be found). A finished run writes the status
// "done"; running it again sends nothing and says so.
//
// # Usage
//
//	res, err := dltops.Replay(ctx, dltops.ReplayConfig{
//		Run:        "fix-1234",
//		DLTs:       []string{"orders-dlt"},
//		Filter:     dltops.Filter{ErrorTypes: []string{"*net.OpError"}},
//		ClientOpts: []kgo.Opt{kgo.SeedBrokers("localhost:9092")},
//	})
//	if errors.Is(err, dltops.ErrInterrupted) {
//		// res says how far it got; the same call resumes it.
//	}
//
// # Why a fresh timestamp
//
// A replayed record carries no retry header, so a kretry listener sees its
// first delivery (attempt 1). The listener measures a policy's time budget
// (Timeout) from the record's timestamp, so a replayed record that kept its
// original timestamp would, on its first failure, find its budget long
// spent and go straight back to the DLT with reason "timeout". An old
// timestamp could also make time-based retention delete it early, or be
// refused by a broker's message.timestamp.before.max.ms. The replay stamps
// the time it sends the record, the same instant as HeaderReplayedAt.
package dltops
