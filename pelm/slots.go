package pelm

import (
	"slices"
	"unsafe"
)

// This file holds the structural operations on slots: append, remove,
// eviction victim, expiry, the end-of-batch compaction, and the
// insertion-order list. All are O(1) except the heap updates, O(log n), and
// the O(Dim) row copies.

// appendSlot stores a new item as the newest: a free handle (or a new one)
// and a new row at the end of its phase bucket. v is scaled by 1/norm into
// the row (computed in float64, rounded to float32). The item was stored at
// time (the clock) and expires at expires (0: never; else > the clock). The
// caller made room (live < capacity).
func (m *Memory) appendSlot(id string, v []float32, norm, phase, conf float64, meta []byte, time, expires int64) {
	var s int32
	if n := len(m.free); n > 0 {
		s = m.free[n-1]
		m.free = m.free[:n-1]
	} else {
		s = int32(len(m.slots))
		m.slots = append(m.slots, slot{})
		m.ids = append(m.ids, "")
		m.meta = append(m.meta, nil)
	}
	b := phaseBucket(phase)
	bk := &m.buckets[b]
	m.clock++
	pos := len(bk.info)
	if pos == cap(bk.info) {
		m.resize(bk, pos+m.growth(pos))
	}
	bk.info = append(bk.info, rowInfo{order: m.clock, phase: phase, conf: conf, removedAt: notRemoved, handle: s})
	bk.rows = bk.rows[:(pos+1)*m.stride]
	row := bk.rows[pos*m.stride : (pos+1)*m.stride]
	inv := 1 / norm
	for i, x := range v {
		row[i] = float32(float64(x) * inv)
	}
	clear(row[m.dim:])
	if m.stride16 > 0 {
		bk.rows16 = bk.rows16[:(pos+1)*m.stride16]
		toBF16(bk.rows16[pos*m.stride16:(pos+1)*m.stride16], row[:m.dim])
	}
	var own []byte
	if len(meta) > 0 {
		own = make([]byte, len(meta))
		copy(own, meta)
	}
	m.slots[s] = slot{
		phase:   phase,
		conf:    conf,
		order:   m.clock,
		time:    time,
		expires: expires,
		prev:    m.tail,
		next:    nilSlot,
		heapPos: [numHeaps]int32{-1, -1},
		bucket:  int32(b),
		pos:     int32(pos),
	}
	m.ids[s] = id
	m.meta[s] = own
	if m.tail != nilSlot {
		m.slots[m.tail].next = s
	} else {
		m.head = s
	}
	m.tail = s
	if m.eviction == LowestConfidence {
		m.heapPush(confHeap, s)
	}
	if expires != 0 {
		m.heapPush(expHeap, s)
	}
	m.index[id] = s
	m.peakIndex = max(m.peakIndex, len(m.index))
	m.idMeta += int64(len(id) + len(meta))
	m.live++
}

// removeSlot removes live slot s on behalf of op opIndex: it leaves the
// index, the order list and the heaps at once, while its data stays readable
// until compact.
func (m *Memory) removeSlot(s int32, opIndex int) {
	sl := &m.slots[s]
	m.buckets[sl.bucket].info[sl.pos].removedAt = int32(opIndex)
	if sl.prev != nilSlot {
		m.slots[sl.prev].next = sl.next
	} else {
		m.head = sl.next
	}
	if sl.next != nilSlot {
		m.slots[sl.next].prev = sl.prev
	} else {
		m.tail = sl.prev
	}
	if m.eviction == LowestConfidence {
		m.heapRemove(confHeap, sl.heapPos[confHeap])
	}
	if sl.heapPos[expHeap] >= 0 {
		m.heapRemove(expHeap, sl.heapPos[expHeap])
	}
	delete(m.index, m.ids[s])
	m.live--
	m.removed = append(m.removed, s)
}

// victim returns the live slot the eviction policy drops next. The memory
// is not empty.
func (m *Memory) victim() int32 {
	if m.eviction == LowestConfidence {
		return m.heaps[confHeap][0]
	}
	return m.head
}

// due reports whether an item is expired at the clock: the first to
// expire, the root of the expiry heap, has 0 < expires ≤ now. O(1).
func (m *Memory) due() bool {
	h := m.heaps[expHeap]
	return len(h) > 0 && m.slots[h[0]].expires <= m.now
}

// expire removes every item expired at the clock before op opIndex takes
// effect, the earliest expiry first and, among equal ones, the oldest, and
// appends their ids to m.expired. O(log n) per item removed.
//
// The rows are marked removedAt = opIndex−1: removed between ops opIndex−1
// and opIndex, so that the scan's test (a retrieve at op i sees a row iff
// removedAt ≥ i) hides them from a retrieve at opIndex and shows them to
// the earlier ones, unchanged. (A forget, an eviction or an upsert at op i
// marks i: no retrieve is at op i.)
func (m *Memory) expire(opIndex int) {
	for m.due() {
		s := m.heaps[expHeap][0]
		m.expired = append(m.expired, m.ids[s])
		m.removeSlot(s, opIndex-1)
	}
}

// compact drops the rows of the slots removed by the batch and frees their
// handles. Within a bucket, each hole below the bucket's last live row
// receives that row (swap-remove), so the cost is O(removed·Dim).
func (m *Memory) compact() {
	for _, r := range m.removed {
		sl := &m.slots[r]
		if sl.pos < 0 {
			continue // already dropped with its bucket's tail
		}
		bk := &m.buckets[sl.bucket]
		n := len(bk.info)
		for n > 0 && bk.info[n-1].removedAt != notRemoved {
			m.slots[bk.info[n-1].handle].pos = -1
			n--
		}
		if sl.pos >= 0 { // still below the live tail: move the last live row in
			last := bk.info[n-1].handle
			copy(bk.rows[int(sl.pos)*m.stride:int(sl.pos+1)*m.stride], bk.rows[(n-1)*m.stride:n*m.stride])
			if m.stride16 > 0 {
				copy(bk.rows16[int(sl.pos)*m.stride16:int(sl.pos+1)*m.stride16], bk.rows16[(n-1)*m.stride16:n*m.stride16])
			}
			bk.info[sl.pos] = bk.info[n-1]
			m.slots[last].pos = sl.pos
			sl.pos = -1
			n--
		}
		bk.info = bk.info[:n]
		bk.rows = bk.rows[:n*m.stride]
		bk.rows16 = bk.rows16[:n*m.stride16]
	}
	for _, r := range m.removed {
		m.idMeta -= int64(len(m.ids[r]) + len(m.meta[r]))
		m.ids[r] = "" // release the string and the meta for the collector
		m.meta[r] = nil
		m.free = append(m.free, r)
	}
	m.removed = m.removed[:0]
	for b := range m.buckets {
		m.shrink(&m.buckets[b])
	}
}

// Growth of the phase buckets. A bucket's rows, their bfloat16 copies and
// their rowInfos share one allocation of cap(info) rows, resized (and the
// live rows copied) by resize alone; Memory.rowsCap is the sum of the
// buckets' capacities. The policy keeps that sum near the rows held once the
// memory is full, while each resize of a bucket of n rows follows at least
// about n/32 stores or removals in it (amortised O(Dim) per op):
//
//   - A full bucket of n rows grows by max(n/growDiv, growMinRows) rows, or,
//     while the buckets' capacities leave part of Capacity unallocated, by
//     its share of that part in proportion to its rows (at most n more:
//     doubling), so that filling a memory copies each row about three times
//     and ends near Capacity rows.
//   - At the end of a batch, when the capacities exceed Capacity, a bucket
//     whose spare room exceeds n/trimDiv + trimMinRows is cut to
//     n + n/keepDiv + growMinRows rows (an empty one to none); the spare room
//     of all the buckets is then at most Capacity/trimDiv + 64·trimMinRows
//     rows.
//   - Otherwise (capacities within Capacity) a bucket of more than
//     shrinkMinRows rows holding less than a quarter of them is cut to twice
//     its rows, so that memory follows phases that drift.
const (
	growDiv       = 16
	growMinRows   = 4
	trimDiv       = 10
	keepDiv       = 32
	trimMinRows   = 16
	shrinkMinRows = 256
)

// growth returns how many rows a full bucket of n rows grows by.
func (m *Memory) growth(n int) int {
	inc := max(n/growDiv, growMinRows)
	if free := m.capacity - m.rowsCap; free > 0 && m.live > 0 {
		inc = max(inc, min(n, int(int64(free)*int64(n)/int64(m.live))))
	}
	return inc
}

// resize gives bucket bk room for exactly c ≥ len(bk.info) rows in one new
// allocation (none when c is 0): the float32 rows, then their bfloat16
// copies, then the rowInfos, all pointer-free, so that a resize costs one
// allocation. Every row size is a multiple of 16 bytes, so each part is
// aligned for its type.
func (m *Memory) resize(bk *bucket, c int) {
	n := len(bk.info)
	m.rowsCap += c - cap(bk.info)
	if c == 0 {
		*bk = bucket{}
		return
	}
	f32, b16 := c*m.stride, c*m.stride16
	words := (f32*4 + b16*2 + c*int(unsafe.Sizeof(rowInfo{}))) / 8
	buf := make([]uint64, words)
	base := unsafe.Pointer(unsafe.SliceData(buf))
	rows := unsafe.Slice((*float32)(base), f32)
	info := unsafe.Slice((*rowInfo)(unsafe.Add(base, f32*4+b16*2)), c)
	copy(rows, bk.rows[:n*m.stride])
	copy(info, bk.info)
	bk.rows, bk.info = rows[:n*m.stride], info[:n]
	if b16 > 0 {
		rows16 := unsafe.Slice((*uint16)(unsafe.Add(base, f32*4)), b16)
		copy(rows16, bk.rows16[:n*m.stride16])
		bk.rows16 = rows16[:n*m.stride16]
	}
}

// shrink applies the end-of-batch half of the growth policy to bucket bk.
func (m *Memory) shrink(bk *bucket) {
	n, c := len(bk.info), cap(bk.info)
	switch {
	case m.rowsCap > m.capacity && c-n > n/trimDiv+trimMinRows:
		if n == 0 {
			m.resize(bk, 0)
		} else {
			m.resize(bk, n+n/keepDiv+growMinRows)
		}
	case c > shrinkMinRows && n < c/4:
		m.resize(bk, max(2*n, shrinkMinRows/2))
	}
}

// grow extends s by n zeros, growing its capacity like append. (Not
// append(s, make(...)...): the race detector's build allocates the make.)
func grow(s []float32, n int) []float32 {
	s = slices.Grow(s, n)
	s = s[:len(s)+n]
	clear(s[len(s)-n:])
	return s
}
