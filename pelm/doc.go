// Package pelm is the Phase-Entangled Lattice Memory: a bounded store of
// float32 embeddings, each with a phase in [0, 1], a confidence in [0, 1] and
// opaque metadata, searched by cosine similarity within a phase window.
//
// # Model
//
// A Memory holds at most Capacity items of Dim float32 values. Each item has a
// unique id (1..MaxIDLen bytes), a unit vector, a phase, a confidence, a meta
// byte string, an insertion number (Item.Order) that grows with every
// store, the time it was stored (Item.Time) and the time it expires
// (Item.Expires, 0 for never). All work goes through Apply, which executes a
// batch of Ops:
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
// # Expiry
//
// Time is the stream time of requests, never the wall clock: every op
// carries one (Op.Time, on any int64 clock, Unix nanoseconds say), and the memory's clock (Now) is the largest seen so far, 0
// before any. It never moves back: an op whose Time is below it (a server's
// clock stepped back) leaves it where it is. Before op i takes effect, every
// item whose Expires is not 0 and at most the clock is removed, exactly as a
// forget at op i: retrieves before op i in the same batch still see it, op i
// and later ones do not, Len no longer counts it, no forget finds it, and it
// is never a victim of eviction, so a full memory drops its expired items
// before it evicts a live one. Items expire earliest Expires first, the
// oldest first among equal ones. A store whose Expires is already at most
// the clock stores nothing and evicts nothing (it is stored and expires at
// once; the old version of its id, if any, is still replaced). An upsert
// takes the new op's Expires; a forget or an eviction takes the item out of
// the expiry index. Expired lists the ids expired by the last Apply (or
// Expire, which advances the clock between batches), for the caller to
// tombstone. Between calls, no held item is expired at the clock.
//
// # Restoring
//
// Storing the items of a memory (Items, oldest first) into a new one, each
// with its Time and Expires, then calling Expire with the old memory's Now,
// reproduces it: the same items in the same order with the same Time and
// Expires (new Order numbers, in the same order), so the same results to
// the same later ops. Items that had expired but whose removal the caller
// did not record (a tombstone lost in a crash) may be stored too, in their
// place by Order: each expires again during the replay, before the store of
// the first item stored after its expiry (whose Time, the clock when it was
// stored, is at least its Expires), so it never makes the restored memory
// evict; the final Expire removes the rest. The stored vector is a unit
// vector: storing it again may round it differently in the last bit, so a
// caller that needs bit-identical scores restores the vectors it was given.
//
// # Maths
//
// A stored vector v is kept as v̂ = v/‖v‖₂, the norm and the quotient
// computed in float64 and rounded to float32. A query q is scaled the same
// way, so the score of an item is the cosine
//
//	score = Σᵢ q̂ᵢ·v̂ᵢ = q·v / (‖q‖₂ ‖v‖₂) ∈ [−1, 1],
//
// accumulated in float32 by the scoring kernel (relative error about
// 1e−7·√Dim). The kernel is chosen once per Memory from what the CPU runs:
// on amd64, AVX-512 (16 lanes) or AVX2 with FMA (8 lanes), in assembly;
// elsewhere, or built with the tag purego, portable Go (4 lanes). Lane l sums
// q̂ᵢ·v̂ᵢ over i ≡ l modulo the lane count, in increasing i, with one fused
// multiply-add per term (Go: a rounded product, then a rounded sum); the
// lanes are then added pairwise in a fixed tree (lanes l and l+8, then l+4,
// then l+2, then l+1; in Go (l₀+l₂)+(l₁+l₃)). The score of a query and a row
// is thus a function of the two vectors alone, the same whatever the batch,
// the bucket, the tiling, the position of the row or the number of
// goroutines; identical stored vectors therefore score exactly alike and
// tie, and ties go to the larger Order. Kernels differ from one another only
// by float32 rounding.
// The phase window is evaluated in float64 exactly as written above, so
// phases 0 and 1 and a distance equal to the tolerance are matches.
//
// Where the CPU has AVX512_BF16 and Dim ≥ 128, the AVX-512 kernel runs a
// first pass on copies of the rows and queries rounded to bfloat16 (8
// significant bits), at twice the speed and half the bytes of float32, and
// rescores in float32, with the kernel above, only the rows whose
// approximate score reaches a query's k-th best score so far minus ε, ε
// bounding the first pass's error for unit vectors (about 0.0079 at
// Dim 384; eps16 in kernel.go gives the derivation). Such rows are
// prefetched and queued, up to 8 per query, and rescored together; a
// sub-block where many qualify (while the list fills) is rescored whole.
// A row skipped cannot reach the top k, and every score returned is the
// float32 kernel's: the results are exactly those without the first pass.
//
// # Layout
//
// Items are numbered by handles (slots) that never change while the item
// lives; the id index, the insertion-order list (FIFO eviction, Items), the
// indexed min-heap on (confidence, order) (LowestConfidence eviction) and
// the indexed min-heap on (expires, order) of the items that expire (the
// expiry index) refer to handles. Rows are kept in 64 phase buckets, bucket b holding the
// items with phase in [b/64, (b+1)/64) (and phase 1 in the last), each bucket
// one dense row-major matrix of unit vectors, padded with zeros to a multiple
// of 4 floats, with beside each row a 32-byte copy of what the top-k scan
// checks (the item's handle, order, phase, confidence and removedAt) and,
// with the bfloat16 first pass, a copy of the row rounded to bfloat16,
// padded to a multiple of 32 values (2 bytes a value: half the float32
// bytes again at Dim 384). A
// retrieve with window [p−t, p+t] scores only the buckets the window
// touches: at the default tolerance 0.15 and uniform phases, about a third
// of the rows. A bucket's float32 rows, bfloat16 rows and 32-byte copies
// share one allocation, sized by the growth policy (see Allocation), which
// keeps the rows allocated close to the rows held.
//
// # Execution of a batch
//
// Apply gives exactly the results of executing its ops one by one (a retrieve
// sees every earlier store and forget of the batch and no later one), while
// scoring all the retrieves of the batch in one blocked pass over the rows:
//
//  1. Structure, op by op. First the clock advances to the op's Time if
//     that is later, and while the root of the expiry index is due
//     (Expires ≤ clock: one comparison when none is), that item is removed
//     before the op, marked removedAt = op index − 1. Then a store takes a
//     free handle and appends its row to its bucket, with the next insertion
//     number; a removal (forget, eviction, the old version of an upsert)
//     marks its slot removedAt = op index; either way the item leaves the id
//     index, the order list and the heaps at once, but its row and metadata
//     stay in place. Every decision (is the id present, is the memory full,
//     which item is the victim, what has expired) therefore sees the
//     structure exactly as one-by-one execution would; vectors never
//     influence these decisions. A retrieve records its query and maxOrder,
//     the last insertion number handed out before it. Rows exceed Capacity
//     during the batch by at most the number of its stores.
//  2. Scoring. If there are retrieves, they are sorted by their windows'
//     buckets, and each query is scored only against the buckets its window
//     touches, in units of at most 64 queries × one L2-sized block of one
//     bucket's rows, the units spread over up to Config.Parallelism
//     goroutines in contiguous runs of about equal cost. Within a unit, a
//     fused kernel takes an L1-sized sub-block of rows (about 24 KiB) and
//     scores it against the unit's queries four at a time (register
//     blocking: 4 queries × 4 rows of accumulators on AVX-512, 4 × 2 on
//     AVX2; one query at a time for a last one or two, except in the
//     first pass, which pads the last group to four), writing a
//     4 × sub-block tile of scores and each query's best score in it. Each
//     query keeps, per goroutine, a fixed-size sorted top-k list and its
//     k-th best score; a tile whose best score is below it is skipped with
//     one comparison, and otherwise its scores are offered to the list, each
//     below the k-th best rejected by one comparison. No score matrix is
//     stored. A row of item s is a candidate of the retrieve at op i iff
//     order(s) ≤ maxOrder(i) and removedAt(s) ≥ i (stored before op i and
//     not removed before it: no removal is marked at a retrieve's own index,
//     and an expiry before op i is marked i − 1) — exactly the one-by-one
//     state at op i — and the phase and confidence masks hold; these are checked only for scores
//     that reach the k-th best, on a copy of the item's order, phase,
//     confidence and removedAt kept beside its row. The lists are merged
//     with the same order.
//  3. Compaction. The rows of removed items are dropped by swap-remove
//     within their bucket (the bucket's last live row moves into each hole)
//     and their handles are freed, so between batches every row is live.
//
// Costs: a store, a forget and an eviction are O(1) plus O(log n) for the
// LowestConfidence heap and for the expiry index (items with an Expires),
// plus O(Dim) to copy a row; the expiry check is O(1) per op when nothing is
// due and O(log n) per item expired (never a scan of the memory); a batch of B retrieves
// over n items is at most B·n·Dim multiply-adds (about B·n·Dim·(2t+1/64) for
// tolerance t and uniform phases), with each touched row read from memory
// about once per 64 queries (then from L1 by each group of four), and each
// query read from L2 once per sub-block. An assembly
// call scores at most four queries against one sub-block (a few
// microseconds), so it never holds up the scheduler or the collector.
//
// # Concurrency
//
// A Memory is not safe for concurrent use: one goroutine owns it and makes all
// calls. Apply may score a batch on several goroutines of its own; all of them
// have finished when Apply returns. Distinct Memories are independent.
//
// # Allocation
//
// Results are written into the caller's []Result, whose Matches arrays (and
// the vector buffers behind Match.Vector) are reused. In steady state (batches
// no larger than earlier ones, results reused) a batch of retrieves and
// forgets allocates nothing, and stores into a full memory or of ids already
// present allocate only a copy of a non-empty Meta, plus amortised resizes of
// the phase buckets (one allocation each) and the id map's growth to a new
// high-water mark; expiry allocates nothing (the expiry index and the
// Expired list grow to their high-water marks and are kept), nor does
// Expire. A store retains its Op.ID string (an upsert keeps the string
// already stored).
//
// Bucket growth. A full bucket of n rows grows by max(n/16, 4) rows, or,
// while the buckets' capacities together stay below Capacity rows, by its
// share of the rest in proportion to its rows (at most doubling), so that
// filling a memory copies each row about 3.4 times in all. At the end of
// a batch, once the capacities together exceed Capacity, a bucket with more
// than n/10 + 16 spare rows is cut to n + n/32 + 4 (an empty one to none);
// otherwise a bucket of more than 256 rows holding less than a quarter of
// them is cut to twice its rows, so memory follows phases that drift. A
// resize copies the bucket, and follows at least about n/32 stores or
// removals in it since the last: amortised O(Dim) per op (in a churn of
// uniform phases into a full memory of 20,000, one resize per about 220
// stores, copying about 1.4 rows per store; per 110 stores, 2.9 rows, with
// batches of 1024; BenchmarkStore's rate is unchanged).
//
// Footprint. Between batches the rows allocated are at most
// max(Capacity, 1.1·Len + 64·16) rows; for a memory filled to Capacity
// (N items) with uniform or wake/sleep (0.1/0.9) phases, TestMemoryFootprint
// measures at Dim 384, both after filling and after a churn of 2N new ids
// in batches of 1 to 1024: float32 rows 1.03–1.09 × the raw N·Dim·4 bytes
// at N = 20,000 (1.09 only with batches of 1024, whose rows stay in place
// until the batch ends) and 1.04–1.06 × at N = 100,000. Rows are padded to
// a multiple of 4 floats, so for Dim not a multiple of 4 the float32 bytes
// grow by the factor ⌈Dim/4⌉·4/Dim (none at 384). The bfloat16 copy, where
// the first pass runs, costs 2 bytes a value padded to a multiple of 32
// values: 0.5 × raw at Dim 384 before slack, 0.51–0.55 × with it (the same
// row capacity). Beside each row the 32-byte copy of its item's scan data
// adds 32/(4·Dim) × raw (0.021 × at Dim 384), and each item's slot (64
// bytes), id and meta headers, heap entries, map entry, id and meta come on
// top.
//
// Byte accounting. Config.BytesAtCapacity bounds the bytes a full memory of
// that configuration holds for vectors and bookkeeping (ids, metas and batch
// scratch excluded), from the growth policy's bound above; Memory.Bytes
// counts the same from what is allocated now, plus the ids' and metas'
// lengths. TestBytesAtCapacity measures, as HeapAlloc growth with ids of
// about 10 bytes and metas of 32, 2,625 bytes an item at Dim 384 and 9,685
// at Dim 1536 just filled (Capacity 20,000, with the first pass), 2,723 and
// 10,189 after a churn of Capacity new ids; BytesAtCapacity is 1.07–1.13 ×
// those, and Bytes within 0.3 %. The bound allows 64·16 spare rows whatever
// the capacity, so for small memories it is looser (1.28 × at 5,000 items of
// Dim 384).
//
// Scratch space grows to the largest batch seen and is kept: about
// 2·B·Dim·4 bytes of queries (and B·Dim·2 more for the first pass), and Σ TopK·16 bytes of top-k lists per
// goroutine, for a batch of B retrieves; the caller bounds batches. During a batch the
// rows exceed Capacity by at most the number of its stores.
//
// # Aliasing
//
// Match.ID and Match.Meta, and Item.ID and Item.Meta, alias the memory's
// storage; that storage is never written again, so they stay valid forever,
// but the caller must not modify them. Match.Vector points into a buffer of
// its Result, overwritten when that Result is passed to a later Apply.
// Item.Vector aliases the memory's rows and is valid only until the next
// Apply. The strings of Expired are the stored ids (never written either);
// its slice is reused by the next Apply or Expire. Op vectors and metas are
// never retained.
//
// # Preconditions
//
// The caller validates its input (the processor checks every request).
// Apply panics, before changing any state, on a broken precondition: see
// Apply and Op.
package pelm
