// Package processor is pelm's batch loop: it binds the PELM_REQUESTS and
// PELM_DLQ streams, shares the partitions of the memories with the other
// processes on the prefix, and for each partition it serves pulls requests
// with prefetch from the partition's consumer, groups them into
// micro-batches, and for each batch
// decodes and validates every request (package wire), runs each memory's
// filter and memory operations in stream order (packages filter and pelm),
// makes the effects durable (package internal/durable), publishes one
// result per request, copies refused requests to the dead-letter stream,
// and acknowledges. The wire contract is PROTOCOL.md; the README documents
// it.
//
// # Following a request
//
// A store request from pull to purge, in seven files:
//
//	partition.go            serve: fence, restore, recovery, the partition's consumer, hand back
//	pull.go                 the pull loop: iterator to batcher, idle checks, a new iterator when one stalls
//	batch.go                handleBatch: decode each message into a slot, compose results, hand the effects to the store
//	execute.go              plan and execute: the filter in stream order, then one pelm.Apply per memory
//	internal/durable/store.go    Append: the batch's one journal record; Replay, Acked, Tick
//	publish.go              publish the results, flush, ack; dead letters
//	internal/durable/journal.go  the record, ack confirmation, purge
//
// Beside them: processor.go (Run: setup, the stats loop), owner.go (the
// membership, the lease, which partitions this process serves and the
// handovers), assign.go (the balanced assignment every process computes
// alike), migrate.go (a prefix served by a version before partitions),
// budget.go (--max-bytes and --max-memories across partitions), memory.go
// (the memories, their settings and their restore), manage.go (create, info, drop), capture.go (which result
// subjects a stream keeps, so that those results are stored before the
// ack), recovery.go (the requests of a processor that died), redeliver.go
// (InProgress, Nak with backoff, JetStream's give-up advisory), metrics.go
// and stats.go, config.go.
//
// # Concurrency
//
// Run owns the processor. The owner's loop renews the membership and
// starts and stops partitions. Each partition served has a goroutine that
// pulls from its consumer and one (the batcher's) that owns its memories
// and its durable store and runs its batches; one goroutine publishes
// stats. A partition's memory state is touched only by its batch
// goroutine, so it takes no locks; what partitions share (the stats
// window, the budget, the metrics, the list of captured subjects) is
// locked or atomic, and touched once per batch or when a memory is made.
//
// # Scale-out
//
// The requests stream files each request under its memory's partition
// (<prefix>.part.<n>.<memory>.<op>, a subject transform). A process serves
// a partition only after claiming it in PELM_OWNERS and fencing it
// (internal/durable): from then on the server refuses the previous
// owner's journal, state and marker writes. It deletes the previous
// owner's consumer, rebuilds the memories, runs what the previous owner
// held in stream order (recovery.go), and consumes with a consumer of its
// own. Results and acks stop as soon as the process's lease is in doubt
// (owner.go says why that is enough).
//
// # Allocation
//
// Decoding allocates nothing (wire); slots, outcomes, the result encoder,
// the result header and the journal's buffers are reused from batch to
// batch. Per request, what still allocates is nats.go's own work (pulling,
// metadata parsing, acks, header encoding on every publish), the strings a
// stored item keeps (its id), and the durable store's per-request share
// (see internal/durable).
//
// # Delivery
//
// Results go out with core NATS publishes; the batch is flushed (a round
// trip to the server) before its requests are acknowledged, so a request is
// only acknowledged once its result has reached the server, and a flush over
// a new connection does not count. A result whose subject a stream captures
// goes out as a JetStream publish instead, and its request is acknowledged
// only once the stream has stored it (capture.go). Refused requests are copied to
// <prefix>.dlq.<memory>.<op> with a JetStream publish; they are terminated
// only once that copy is stored. When the journal write, a flush or a
// dead-letter copy fails the requests are negatively acknowledged with a
// growing delay and come back, and a failed journal write makes the next
// batch restore the memories first; JetStream's give-up advisory moves a
// request delivered MaxDeliver times to the DLQ.
package processor
