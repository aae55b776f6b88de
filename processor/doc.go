// Package processor is the stream processor: it binds the PELM_REQUESTS and
// PELM_DLQ streams and the durable pull consumer pelm-processor, pulls
// requests with prefetch, groups them into micro-batches, and for each batch
// decodes and validates every request, runs each memory's filter and memory
// operations in stream order, publishes one result per request, copies
// refused requests to the dead-letter stream, and acknowledges.
//
// The wire contract is PROTOCOL.md; the README documents it.
//
// # Concurrency
//
// Run owns the processor. One goroutine pulls from JetStream, one (the
// batcher's) owns every memory and runs the batches, one publishes stats.
// Memory state is touched only by the batch goroutine, so it takes no locks;
// the stats window is locked once per batch.
//
// # Allocation
//
// Request bodies are decoded by a bounded decoder built on msgpack's
// low-level reader: every declared length is checked against the bytes the
// message still holds before anything is read or allocated, and vectors are
// decoded straight into reused buffers; decoding allocates nothing. Slots,
// outcomes, the result encoder and the result header are reused from batch
// to batch. Per request, what still allocates is: nats.go's own work
// (pulling, metadata parsing, acks, header encoding on every publish), the
// strings a stored item keeps (its id), and the state records persist
// writes (their headers, encodings and the done record kept in memory):
// about 26 allocations per store request in all, about half of them in
// nats.go (measured with the bench tool's memory profile).
//
// # Durability
//
// Every memory lives in the stream PELM_STATE (state.go). Before any request
// of a batch is acknowledged, the batch's effects and the results of its
// effectful requests are written there as JetStream atomic batches
// (persist.go); at start the memories are rebuilt from it (restore.go) and the
// requests a dead processor held are run first, in stream order
// (recover.go). A redelivered request whose result is stored replays it.
//
// # Delivery
//
// Results go out with core NATS publishes; the batch is flushed (a round
// trip to the server) before its requests are acknowledged, so a request is
// only acknowledged once its result has reached the server, and a flush over
// a new connection does not count. Refused requests are copied to
// <prefix>.dlq.<memory>.<op> with a JetStream publish; they are terminated
// only once that copy is stored. When a commit, a flush or a dead-letter
// copy fails the requests are negatively acknowledged with a growing delay
// and come back; JetStream's give-up advisory moves a request delivered
// MaxDeliver times to the DLQ.
package processor
