package pelm

import (
	"fmt"
	"math"
)

// notRemoved is rowInfo.removedAt of an item that no op of the running
// batch has removed (every item between batches).
const notRemoved = math.MaxInt32

// nilSlot ends the insertion-order list.
const nilSlot = -1

// phaseBuckets is the number of phase buckets: bucket b holds the rows of
// the items with phase in [b/phaseBuckets, (b+1)/phaseBuckets), the last one
// also phase 1. A retrieve scores only the buckets its window touches.
const phaseBuckets = 64

// phaseBucket returns the bucket of phase p ∈ [0, 1] (p·64 is exact).
func phaseBucket(p float64) int {
	return min(int(p*phaseBuckets), phaseBuckets-1)
}

// slot is the pointer-free part of one stored item (so the garbage
// collector never scans the slot array). A slot number (a handle) never
// changes while its item lives: the id index, the order list and the heaps
// refer to items by it. Its row may move within its bucket.
type slot struct {
	phase, conf float64
	order       uint64          // insertion number; larger is newer
	time        int64           // the memory's clock when the item was stored (Item.Time)
	expires     int64           // Op.Expires of its store; 0: never
	prev, next  int32           // insertion-order list, oldest at Memory.head
	heapPos     [numHeaps]int32 // index in Memory.heaps[k], −1 when absent
	bucket      int32           // phase bucket holding the row
	pos         int32           // row index within the bucket
}

// bucket holds the rows of one phase bucket: row i is
// rows[i*stride:(i+1)*stride] and belongs to slot info[i].handle. The three
// slices have room for cap(info) rows, in one allocation (see resize).
type bucket struct {
	rows   []float32
	rows16 []uint16 // the rows rounded to bfloat16, stride16 apart (first pass only)
	info   []rowInfo
}

// rowInfo is what the top-k scan checks of a row's item, copied from its
// slot so that the scan reads it in row order instead of chasing handles.
type rowInfo struct {
	order       uint64
	phase, conf float64
	// removedAt is the index of the op of the running batch that removed
	// the item (forget, eviction, or an upsert of its id), or, for an item
	// that expired before op i, i−1; notRemoved otherwise. A retrieve at
	// op i sees the row iff removedAt ≥ i. A removed item keeps its data
	// readable until the batch ends, then compact drops it.
	removedAt int32
	handle    int32
}

// Memory is a bounded store of unit float32 vectors with a phase, a
// confidence and opaque metadata, searched by cosine similarity within a
// phase window. See the package documentation for the contract.
//
// A Memory is not safe for concurrent use: one goroutine owns it.
type Memory struct {
	dim      int
	stride   int // row length in float32: dim rounded up to a multiple of 4, zero padded
	stride16 int // bfloat16 row length: dim rounded up to a multiple of 32; 0 without the first pass
	capacity int
	eviction Eviction

	// Slot s (a handle) holds slots[s], ids[s], meta[s]; its row is in
	// buckets[slots[s].bucket] at slots[s].pos. Free handles are reused.
	// During a batch, removed items and the batch's new items coexist;
	// between batches every used handle and every row is live.
	buckets [phaseBuckets]bucket
	slots   []slot
	ids     []string
	meta    [][]byte
	free    []int32 // unused handles
	rowsCap int     // Σ cap(buckets[b].info): rows allocated (see growth)

	index map[string]int32 // id → slot of every live item
	head  int32            // oldest live slot, nilSlot when empty
	tail  int32            // newest live slot, nilSlot when empty
	// heaps[confHeap]: LowestConfidence only, every live slot on
	// (conf, order); heaps[expHeap]: the live slots with an expiry, on
	// (expires, order). See heap.go.
	heaps [numHeaps][]int32
	live  int    // live items
	clock uint64 // last order handed out
	now   int64  // the largest Op.Time (or Expire argument) seen; starts at 0

	peakIndex int      // most ids ever indexed at once (the map never shrinks)
	idMeta    int64    // Σ len(id) + len(meta) of the held slots
	expired   []string // ids removed by expiry in the last Apply or Expire

	// Batch scratch, reused across Applies.
	norms   []float64 // per op: the Euclidean norm of its vector
	removed []int32   // slots removed by the running batch
	search  searcher
}

// New returns an empty Memory for cfg, whose zero fields take their
// defaults. It fails with an error from cfg.Validate.
func New(cfg Config) (*Memory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Memory{
		dim:      cfg.Dim,
		capacity: cfg.Capacity,
		eviction: cfg.Eviction,
		index:    make(map[string]int32),
		head:     nilSlot,
		tail:     nilSlot,
	}
	m.stride, m.stride16 = strides(cfg.Dim)
	m.search.init(m, cfg.Parallelism)
	return m, nil
}

// Len returns the number of items held, at most Capacity.
func (m *Memory) Len() int { return m.live }

// Capacity returns the most items the memory holds.
func (m *Memory) Capacity() int { return m.capacity }

// Dim returns the length of every vector.
func (m *Memory) Dim() int { return m.dim }

// Eviction returns the memory's eviction policy.
func (m *Memory) Eviction() Eviction { return m.eviction }

// Items calls fn for every item, oldest first (increasing Order), until fn
// returns false; it has the shape of an iter.Seq[Item], so
// `for it := range m.Items` works. fn must not call Apply. Item.Vector
// aliases the memory's storage and is valid only until the next Apply.
func (m *Memory) Items(fn func(it Item) bool) {
	for s := m.head; s != nilSlot; s = m.slots[s].next {
		if !fn(m.item(s)) {
			return
		}
	}
}

// Get returns the item stored under id, if any. Item.Vector aliases the
// memory's storage and is valid only until the next Apply.
func (m *Memory) Get(id string) (Item, bool) {
	s, ok := m.index[id]
	if !ok {
		return Item{}, false
	}
	return m.item(s), true
}

func (m *Memory) item(s int32) Item {
	sl := &m.slots[s]
	return Item{
		ID:         m.ids[s],
		Vector:     m.row(s)[:m.dim:m.dim],
		Phase:      sl.phase,
		Confidence: sl.conf,
		Meta:       m.meta[s],
		Order:      sl.order,
		Time:       sl.time,
		Expires:    sl.expires,
	}
}

// row returns slot s's row of stride values (dim values then zeros).
func (m *Memory) row(s int32) []float32 {
	sl := &m.slots[s]
	o := int(sl.pos) * m.stride
	return m.buckets[sl.bucket].rows[o : o+m.stride : o+m.stride]
}

// String describes the memory for logs.
func (m *Memory) String() string {
	return fmt.Sprintf("pelm.Memory{dim: %d, len: %d, capacity: %d, eviction: %s}", m.dim, m.live, m.capacity, m.eviction)
}
