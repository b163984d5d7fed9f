// Package console is the web UI of "kretry console": a small server,
// net/http and html/template with embedded templates and stylesheet and no
// script at all, that shows the kretry plans on a cluster, the records
// waiting in their retry tiers (internal/tierlag), their dead-letter
// topics grouped as "kretry dlt inspect" groups them (internal/dltops), any
// one DLT record, and that replays DLT records with the engine of "kretry
// dlt replay" (dltops.Replay). It has no public promise; cmd/kretry wires
// it to the command line.
//
// # Pages
//
//	GET  /                overview: every plan found by topic names, with
//	                      its DLTs' record counts and, per consumer group,
//	                      its tiers' records not yet due and overdue
//	GET  /dlt?topic=…     a DLT: filters (error_type, reason,
//	                      original_topic, group, since, until, key, key_hex),
//	                      groups by error type, original topic, group and
//	                      age, an SVG chart of arrivals, records newest
//	                      first, paginated (page=N)
//	GET  /record?topic=…&partition=…&offset=…
//	                      one record: key and value as text, hex and
//	                      pretty JSON, every header decoded, the retry
//	                      history its headers tell
//	GET  /record/raw?…&part=key|value
//	                      the whole key or value, as a download
//	GET  /replay?topic=…  the replay form, prefilled with the filters
//	POST /replay          action=dry-run starts a dry run; action=replay
//	                      replays what a finished dry run showed
//	                      (dry_run=JOB) once confirm repeats its run ID
//	GET  /jobs/{id}       a dry run's or replay's progress and summary
//	POST /jobs/{id}/cancel
//	                      stops a replay (resumable with the same run ID)
//
// # Finding plans
//
// A cluster does not record kretry's plans, so they are found by the names
// Naming gives topics: a topic <base><retry suffix>[-N[-M]] is a retry
// tier of base, ordered by N then M (by delay or by index, as named), and
// <base><DLT suffix> its DLT. The main topic is base when it exists, or
// else the longest topic that base starts with followed by "-" (with
// naming.groupTopics, base is <main>-<group>). A DLT whose base is neither
// a topic nor has tiers belongs to the longest plan its name starts with
// (an error-routed DLT). A replay sends a record of consumer group G from
// main topic T to the first tier of plan T-G if there is one, else of plan
// T, as "kretry dlt replay" does with the policy; a record whose listener
// no plan names is skipped and counted (dltops.SkipNoListener).
//
// # Safety
//
// The console is read-only unless Config.AllowReplay is set. A replay
// needs a finished dry run of the same selection and its run ID typed
// again. Every mutating request is a POST carrying the console's CSRF
// token (random per process) and, when the browser sends them, a same-origin
// Origin and Sec-Fetch-Site; GET requests never change anything. Requests
// whose Host is not in Config.AllowedHosts are refused (see LoopbackHosts),
// so that a DNS-rebinding page cannot read the token. Pages are rendered by
// html/template, record contents go through visible (invalid UTF-8 and
// control characters shown as escapes), keys and values beyond
// Config.MaxValueBytes are cut and offered as a download, and the
// Content-Security-Policy allows no script. Connection options (SASL
// passwords) are never rendered or logged.
package console
