// Package durable makes the batch loop's effects survive a crash, exactly
// once: it owns the journal, the materialised per-item state, the results
// kept for replays, ack confirmation and purging, restore, and the recovery
// marker. The processor's loop reaches it only through Store's methods:
//
//	Setup     create the streams below when missing
//	Fence     claim the partition: every later write of an earlier owner is refused
//	Restore   rebuild the memories (an Applier) and the kept results
//	Pulled    n more messages pulled: retire old results, confirm acks
//	Replay    the stored result of a request that already ran, if any
//	Append    make a batch's effects durable (blocks until they are)
//	Acked     a request was acknowledged
//	Tick      after a batch, and every 250 ms while idle: confirm acks, materialise, purge
//	Close     at shutdown: materialise everything, purge, wait
//	ReadMarker, WriteMarker   the recovery marker
//
// # Streams and records
//
// A Store serves one partition of the memories (Config.Partition; Owns
// says which memories are in it): its journal subject, commit mark,
// recovery marker and fences are its own, and its memories keep their
// per-memory subjects below.
//
// PELM_JOURNAL (subject <prefix>.journal.<partition>) is the write-ahead
// log: one record per batch that changed anything, holding every effectful request of the
// batch (one that went through its memory's filter, or forgot an item) in
// stream order, each with its effects (the item stored, with its vector as
// sent; the id forgotten; the filter's threshold and ema after it) and its
// result (subject, Content-Type, request id, body). A record is one
// ordinary publish, split into parts (header Pelm-Part: i/n) past the
// server's payload limit. Append returns once the journal has stored every
// part: that one write is what a request's acknowledgement waits for.
//
// PELM_STATE holds each memory in a per-item layout, one message kept per
// subject, so that the stream compacts itself and an R3 stream replicates it
// with no code of ours:
//
//	<prefix>.state.m.<memory>.i.<base64url(id)>   an item (tombstone: header Pelm-Op: del, Nats-TTL 60s)
//	<prefix>.state.m.<memory>.f                   the filter's threshold and ema
//	<prefix>.state.commit.<partition>             the journal mark the partition's layout has reached
//	<prefix>.state.recovering.<partition>         the recovery marker
//	<prefix>.state.fence.<partition>              the state's fence (below)
//
// Behind the requests, each appended request's item changes (its put, the
// eviction it caused, its forget) and filter state are queued in epochs
// (materialize.go). An epoch is sealed after Config.MaterializeEvery or near
// the server's 1,000-message atomic batch limit, always at a request
// boundary, and committed as one JetStream atomic batch whose commit message
// records the journal mark it reaches (a record and how many of its entries).
// One commit is in flight at a time; the batch loop waits only when more
// than four sealed epochs are behind. Items are written in insertion order,
// so the stream order of the surviving messages is each memory's order.
//
// A request's result is kept (Replay) until the work-queue stream has
// removed the request: an ack can be lost (a server shutting down still
// answers pings after JetStream stopped taking acks), so a flush proves
// nothing, but the requests stream's first sequence does, and requests
// above it are looked up one by one once ten seconds old. A confirmed
// result stays in memory until 4 × batch-max more messages are pulled (a
// stale copy may sit in the pull buffer), and its journal record is purged
// once it is materialised and all its results are confirmed.
//
// # Fencing
//
// Several processes may believe they own a partition at once (a paused
// owner resumes after another took over). Fence writes a message to
// <prefix>.journal.<partition>.fence and to <prefix>.state.fence.<partition>
// and keeps their sequences; every journal part, state commit (on its
// commit message: the whole atomic batch is refused with it) and marker
// write carries Nats-Expected-Last-Subject-Sequence of its stream's fence,
// with Nats-Expected-Last-Subject-Sequence-Subject naming the fence's
// subject. A later owner's Fence moves the fences, so the server refuses
// every write of the earlier one (error 10071): Append, and the writes
// behind Tick and Close, then return ErrFenced, and Fenced reports it. One
// write per partition is in flight at a time on each stream, as a
// clustered stream requires of writes checked against one subject. Purges
// cannot be fenced: a store sends none once Config.Valid (the process's
// lease) says no. MigrateLegacy takes over the single journal, commit
// mark and marker of the version before partitions.
//
// # Restore
//
// Restore reads the per-item state of the partition's memories (listed
// from their settings and filter subjects) in stream order and loads each memory
// oldest first (the same items, order and eviction future), sets the
// filters, then reads the journal: every record still there gives back its
// results for replays, and the entries past the commit mark are replayed on
// the memories (stores and forgets run through the memory again, so
// evictions come out the same) and queued for materialising again. Restore
// of 20,000 items of 384 dimensions takes about half a second
// (BenchmarkRestore in processor).
//
// # Crash windows
//
// The fault tests of cmd/pelm kill the processor at each point of the
// batch loop (after the pull, after Append, after publishing, before the
// acks), and processor's crash tests between materialisations; a record cut
// short between its parts, which needs one past the payload limit, is not
// provoked by any test.
//   - Crash before Append returns: nothing was acknowledged. A record cut
//     short (some parts stored) is skipped on restore; its requests come
//     back and run as new. A record stored whose acknowledgement was lost is
//     replayed on restore: its requests come back and republish its results.
//   - Crash after Append, before or while results are published, or before
//     the acks: the requests come back (the successor reads back those the
//     dead processor held, and runs them first, in stream order) and
//     republish the journalled results byte for byte, with the same
//     Nats-Msg-Id res-<seq>, so a results stream keeps one copy.
//   - Crash or a lost ack after the acks: the results stay until the
//     requests stream confirms the requests gone, so a redelivery still
//     replays.
//   - Crash while materialising: an atomic batch is all or nothing, and an
//     epoch committed twice leaves the same state; restore replays the
//     journal past whatever mark the state reached.
//   - A request that kills the processor every time: the recovery marker
//     (Marker) names what a recovery runs; a recovery that died is run again
//     one request at a time, and a request that died --max-deliver times goes
//     to the dead-letter stream with an internal error.
//
// # Concurrency and allocation
//
// A Store belongs to the batch loop's goroutine; only purges run on
// goroutines of its own (Close waits for them), and Failures may be read
// from any goroutine. Append encodes the journal record by hand into reused
// buffers, converting each store's vector to little-endian bytes once for
// both the journal and the state, and reuses retired result entries; what
// it still allocates per request is nats.go's (a message and header per
// journal part) and the result kept for replays when no retired entry is
// free.
package durable
