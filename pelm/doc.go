// Package pelm is the Phase-Entangled Lattice Memory: a bounded store of
// float32 embeddings, each with a phase in [0, 1], a confidence in [0, 1] and
// opaque metadata, searched by cosine similarity within a phase window.
//
// # Model
//
// A Memory holds at most Capacity items of Dim float32 values. Each item has a
// unique id (1..MaxIDLen bytes), a unit vector, a phase, a confidence, a meta
// byte string and an insertion number (Item.Order) that grows with every
// store. All work goes through Apply, which executes a batch of Ops:
//
//   - store: if the id exists its old version is removed (Result.Replaced)
//     and the new one is stored as the newest; otherwise, when the memory is
//     full, one item is evicted first (Result.Evicted): the oldest (FIFO) or
//     the lowest confidence, oldest first among equals (LowestConfidence).
//   - forget: remove the item with that id (Result.Found).
//   - retrieve: the TopK items of highest cosine similarity to the query
//     among those with |phase − q.Phase| ≤ q.Tolerance and
//     confidence ≥ q.MinConfidence, highest score first and, among equal
//     scores, the newer item first. Fewer when fewer match.
//
// # Maths
//
// A stored vector v is kept as v̂ = v/‖v‖₂, the norm and the quotient
// computed in float64 and rounded to float32. A query q is scaled the same
// way, so the score of an item is the cosine
//
//	score = Σᵢ q̂ᵢ·v̂ᵢ = q·v / (‖q‖₂ ‖v‖₂) ∈ [−1, 1],
//
// accumulated in float32 by gonum's Sgemm (relative error about 1e−7·√Dim).
// The score of a query and a row depends only on the two vectors, not on the
// batch, the bucket, the tiling or the number of goroutines; identical stored
// vectors therefore score exactly alike and tie, and ties go to the larger
// Order.
// The phase window is evaluated in float64 exactly as written above, so
// phases 0 and 1 and a distance equal to the tolerance are matches.
//
// # Layout
//
// Items are numbered by handles (slots) that never change while the item
// lives; the id index, the insertion-order list (FIFO eviction, Items) and
// the indexed min-heap on (confidence, order) (LowestConfidence eviction)
// refer to handles. Rows are kept in 64 phase buckets, bucket b holding the
// items with phase in [b/64, (b+1)/64) (and phase 1 in the last), each bucket
// one dense row-major matrix of unit vectors, padded with zeros to a multiple
// of 4 floats. A retrieve with window [p−t, p+t] scores only the buckets the
// window touches: at the default tolerance 0.15 and uniform phases, about a
// third of the rows. Each bucket grows like append as it fills.
//
// # Execution of a batch
//
// Apply gives exactly the results of executing its ops one by one (a retrieve
// sees every earlier store and forget of the batch and no later one), while
// scoring all the retrieves of the batch in one blocked matrix product:
//
//  1. Structure, op by op. A store takes a free handle and appends its row
//     to its bucket, with the next insertion number; a removal (forget,
//     eviction, the old version of an upsert) marks its slot removedAt = op
//     index and takes it out of the id index, the order list and the heap at
//     once, but leaves its row and metadata in place. Every decision (is the
//     id present, is the memory full, which item is the victim) therefore
//     sees the structure exactly as one-by-one execution would; vectors
//     never influence these decisions. A retrieve records its query and
//     maxOrder, the last insertion number handed out before it. Rows exceed
//     Capacity during the batch by at most the number of its stores.
//  2. Scoring. If there are retrieves, S = Q̂·R̂ᵀ is computed with
//     blas32.Gemm on units of at most 64 queries × one cache-sized block of
//     one bucket's rows, only for the (query, bucket) pairs the windows
//     touch, the units spread over up to Config.Parallelism goroutines. A row
//     of item s is a candidate of the retrieve at op i iff
//     order(s) ≤ maxOrder(i) and removedAt(s) > i (stored before op i and not
//     removed before op i) — exactly the one-by-one state at op i — and the
//     phase and confidence masks hold. Each query keeps a fixed-size sorted
//     top-k list per goroutine; the lists are merged with the same order.
//  3. Compaction. The rows of removed items are dropped by swap-remove
//     within their bucket (the bucket's last live row moves into each hole)
//     and their handles are freed, so between batches every row is live.
//
// Costs: a store, a forget and an eviction are O(1) plus O(log n) for the
// LowestConfidence heap, plus O(Dim) to copy a row; a batch of B retrieves
// over n items is at most B·n·Dim multiply-adds (about B·n·Dim·(2t+1/64) for
// tolerance t and uniform phases), with each touched row read from memory
// about once per 64 queries.
//
// # Concurrency
//
// A Memory is not safe for concurrent use: one goroutine owns it and makes all
// calls. Apply may score a batch on several goroutines of its own; all of them
// have finished when Apply returns. Distinct Memories are independent.
//
// Scoring calls blas32.Gemm, hence the implementation installed with
// blas32.Use (gonum's native one by default, called on tiles small enough
// that it runs serially and allocates nothing). Installing one that
// allocates or starts threads changes the allocation figures below.
//
// # Allocation
//
// Results are written into the caller's []Result, whose Matches arrays (and
// the vector buffers behind Match.Vector) are reused. In steady state (batches
// no larger than earlier ones, results reused) a batch of retrieves and
// forgets allocates nothing, and stores into a full memory or of ids already
// present allocate only a copy of a non-empty Meta, plus rare amortised growth:
// a phase bucket or the id map reaching a new high-water mark (in a long
// churn of random phases, about one allocation per 10,000 stores). A bucket
// grows like append, and gives back its room when it falls below a quarter
// of it, so memory follows phases that drift. A store retains its Op.ID
// string (an upsert keeps the string already stored).
//
// Scratch space grows to the largest batch seen and is kept: about
// B·Dim·4 bytes of queries, and Σ TopK·16 bytes of top-k lists per goroutine,
// for a batch of B retrieves; the caller bounds batches. During a batch the
// rows exceed Capacity by at most the number of its stores.
//
// # Aliasing
//
// Match.ID and Match.Meta, and Item.ID and Item.Meta, alias the memory's
// storage; that storage is never written again, so they stay valid forever,
// but the caller must not modify them. Match.Vector points into a buffer of
// its Result, overwritten when that Result is passed to a later Apply.
// Item.Vector aliases the memory's rows and is valid only until the next
// Apply. Op vectors and metas are never retained.
//
// # Preconditions
//
// The caller validates its input (the processor checks every request).
// Apply panics, before changing any state, on a broken precondition: see
// Apply and Op.
package pelm
