package pelm

import "slices"

// This file holds the structural operations on slots: append, remove,
// eviction victim, the end-of-batch compaction, and the insertion-order list.
// All are O(1) except the heap updates, O(log n), and the O(Dim) row copies.

// appendSlot stores a new item as the newest: a free handle (or a new one)
// and a new row at the end of its phase bucket. v is scaled by 1/norm into
// the row (computed in float64, rounded to float32). The caller made room
// (live < capacity).
func (m *Memory) appendSlot(id string, v []float32, norm, phase, conf float64, meta []byte) {
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
	bk.info = append(bk.info, rowInfo{order: m.clock, phase: phase, conf: conf, removedAt: notRemoved, handle: s})
	bk.rows = grow(bk.rows, m.stride)
	row := bk.rows[pos*m.stride : pos*m.stride+m.dim]
	inv := 1 / norm
	for i, x := range v {
		row[i] = float32(float64(x) * inv)
	}
	if m.stride16 > 0 {
		bk.rows16 = slices.Grow(bk.rows16, m.stride16)
		bk.rows16 = bk.rows16[:len(bk.rows16)+m.stride16]
		toBF16(bk.rows16[pos*m.stride16:(pos+1)*m.stride16], row)
	}
	var own []byte
	if len(meta) > 0 {
		own = make([]byte, len(meta))
		copy(own, meta)
	}
	m.slots[s] = slot{
		phase:     phase,
		conf:      conf,
		order:     m.clock,
		removedAt: notRemoved,
		prev:      m.tail,
		next:      nilSlot,
		heapPos:   -1,
		bucket:    int32(b),
		pos:       int32(pos),
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
		m.heapPush(s)
	}
	m.index[id] = s
	m.live++
}

// removeSlot removes live slot s on behalf of op opIndex: it leaves the
// index, the order list and the heap at once, while its data stays readable
// until compact.
func (m *Memory) removeSlot(s int32, opIndex int) {
	sl := &m.slots[s]
	sl.removedAt = int32(opIndex)
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
		m.heapRemove(sl.heapPos)
	}
	delete(m.index, m.ids[s])
	m.live--
	m.removed = append(m.removed, s)
}

// victim returns the live slot the eviction policy drops next. The memory
// is not empty.
func (m *Memory) victim() int32 {
	if m.eviction == LowestConfidence {
		return m.heap[0]
	}
	return m.head
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
		m.ids[r] = "" // release the string and the meta for the collector
		m.meta[r] = nil
		m.free = append(m.free, r)
	}
	m.removed = m.removed[:0]
	for b := range m.buckets {
		m.buckets[b].shrink(m.stride, m.stride16)
	}
}

// shrinkMinRows is the capacity, in rows, below which a bucket keeps its
// spare room.
const shrinkMinRows = 256

// shrink gives back the spare capacity of a bucket holding less than a
// quarter of it (phases drifting over time would otherwise leave every
// bucket as large as the largest it ever was), keeping room to double.
func (bk *bucket) shrink(stride, stride16 int) {
	n, c := len(bk.info), cap(bk.info)
	if c <= shrinkMinRows || n >= c/4 {
		return
	}
	keep := max(2*n, shrinkMinRows/2)
	rows := make([]float32, n*stride, keep*stride)
	copy(rows, bk.rows)
	info := make([]rowInfo, n, keep)
	copy(info, bk.info)
	bk.rows, bk.info = rows, info
	if stride16 > 0 {
		rows16 := make([]uint16, n*stride16, keep*stride16)
		copy(rows16, bk.rows16)
		bk.rows16 = rows16
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
