// Package batcher groups a stream of items into batches by size and time,
// Benthos style: a passive Policy counts the items of the batch in hand and
// says when it is due, and one loop, Batcher.Run, owns the policy and selects
// on the input channel, its one timer and the context.
//
// A batch is flushed when it holds MaxSize items, or MaxWait after its first
// item arrived, or, with MaxWait = NoWait, as soon as the input has nothing
// more ready. Before blocking, Run always takes every item already waiting in
// the channel (up to MaxSize), so under load batches fill without waiting.
//
// # Concurrency
//
// A Batcher belongs to the goroutine that calls Run; Run must not be called
// concurrently on one Batcher, though it may be called again after it
// returns. flush is called on Run's goroutine, one batch at a time, in arrival
// order. A Policy is not safe for concurrent use.
//
// # Allocation
//
// Run allocates its timer once per call; the batch slice belongs to the
// Batcher and is reused, so in steady state Run allocates nothing per item
// or per batch. The slice passed to flush is only valid until flush returns.
// Policy methods allocate nothing.
package batcher
