// Package bench is pelm's load generator and performance report: it drives
// a pelm deployment through NATS as a client would, drives a bare JetStream
// echo with the same messages in the same run (the floor: what JetStream
// costs with no work at all), and reports pelm's figures beside the echo's
// and beside the targets of the Python service pelm replaces.
//
// # Load
//
// Run first preloads Config.Preload items with a closed loop (a window of
// requests in flight), then a short warm-up of each system, then an open loop at every offered rate of Config.Rates, echo
// first and pelm second at each rate. With Config.FindMax it then searches
// the highest sustainable rate of each system (doubling, then bisecting)
// and runs both at half of pelm's. Requests are msgpack bodies made once
// before the load by the Go client's encoder (client.Encode: vectors as bin
// of little-endian float32, so a store of 384 values is about 1.6 KiB); ops
// follow Config.Mix in a fixed shuffled order and phases follow
// Config.Phases, from Config.Seed. With Config.TTL the load's stores and
// processes carry that ttl (the preload's do not), to measure expiry; with
// Config.KeepResults a stream (ResultsStream) keeps every result of the
// run, as a user who binds one does, so that pelm acknowledges each request
// only once its result is stored.
//
// The load goes to one memory (Config.Memory), which lives in one
// partition and so on one process of a scaled-out deployment. With
// Config.Memories n it goes to n memories, <memory>-0 to <memory>-(n-1):
// request i (and preloaded item i) to memory i mod n, so that every
// process serving the prefix gets its share.
//
// # Measurement
//
// Every request carries Nats-Msg-Id <run>-<step>-<index> and Pelm-Reply-To
// one inbox of the run; a result is matched to its request by the id that
// comes back as Pelm-Request-Id. Latency runs from the request's intended
// send time (start + index/rate), not from when it was actually sent, so a
// sender that falls behind does not hide the queue it builds (no
// coordinated omission). It goes into an HDR histogram (1 µs to 10 min,
// three significant digits). Throughput is results per second from the
// step's first intended send to its last result. The error rate counts
// error results and requests without a result within Config.Timeout of the
// step's last intended send. A rate is sustainable when its error rate is
// below 1 % and its p99 at most Config.MaxP99.
//
// A step stops sending early (aborted, not sustainable) once more requests
// are unanswered than a sustainable rate can have: with more than
// rate·(MaxP99 + w) in flight, w = max(MaxP99, duration/50), the oldest
// rate·w of them, at least 2 % of the step, are already older than MaxP99.
// After each step the tool waits for late results (until none has come for
// a second, at most 30 s), then purges what is still unanswered from the
// system's stream, so that every step starts on an idle system: per memory
// of the run, under pelm.part.*.<memory>.> where pelm's stream partitions
// requests by a subject transform, <prefix>.req.<memory>.> otherwise.
//
// # The echo floor
//
// The echo has its own stream (work queue, file storage, a two-minute
// duplicate window, as pelm's) and durable pull consumer with pelm's
// prefetch and ack settings, and batches with the same batcher settings.
// For each message it publishes a reply of the size pelm's result for that
// op had in the warm-up, with pelm's result headers; it flushes the batch
// and acks every message: everything pelm does but the work.
//
// Where pelm publishes stats (<prefix>.stats), the ones published while a
// pelm step runs go into that step's report: batch sizes, pelm's own view
// of latency (stream time to result), memory sizes.
//
// # Concurrency
//
// Run blocks until the report is complete or ctx is done. It owns the
// goroutines it starts (sender, echo, progress) and waits for them; result
// handling runs on the load connection's subscription goroutine. Run may be
// called again, but not concurrently on one connection.
//
// # Allocation
//
// Request bodies are made once; per request the sender allocates the id,
// the header map and nats.go's publish bookkeeping, and the receiver
// nats.go's parsed headers. The load generator is a client: it shares the
// machine with what it measures, and the report's echo figures carry the
// same client cost as pelm's.
package bench
