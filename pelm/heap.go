package pelm

// The memory's two indexed binary min-heaps of live slots, one
// implementation for both (no interfaces, no boxing):
//
//   - confHeap, the LowestConfidence eviction order, keyed on
//     (confidence, order): the root is the lowest confidence and, among
//     equal confidences, the oldest. It holds every live slot, and is kept
//     only under LowestConfidence.
//   - expHeap, the expiry index, keyed on (expires, order): the root is the
//     item that expires first and, among equal expiries, the oldest. It
//     holds the live slots whose Expires is not 0, under either policy.
//
// slot.heapPos[k] tracks each slot's position in heap k (−1 when absent),
// so any slot is removed in O(log n).

// heapKind names one of the memory's heaps.
type heapKind uint8

const (
	confHeap heapKind = iota // LowestConfidence eviction: (conf, order)
	expHeap                  // expiry: (expires, order), items with Expires ≠ 0
	numHeaps
)

// heapLess orders slot a before slot b in heap k.
func (m *Memory) heapLess(k heapKind, a, b int32) bool {
	x, y := &m.slots[a], &m.slots[b]
	if k == expHeap {
		return x.expires < y.expires || (x.expires == y.expires && x.order < y.order)
	}
	return x.conf < y.conf || (x.conf == y.conf && x.order < y.order)
}

func (m *Memory) heapPush(k heapKind, s int32) {
	m.heaps[k] = append(m.heaps[k], s)
	i := len(m.heaps[k]) - 1
	m.slots[s].heapPos[k] = int32(i)
	m.heapUp(k, i)
}

// heapRemove removes the element at position i of heap k.
func (m *Memory) heapRemove(k heapKind, i int32) {
	h := m.heaps[k]
	last := len(h) - 1
	s := h[i]
	m.slots[s].heapPos[k] = -1
	if int(i) != last {
		h[i] = h[last]
		m.slots[h[i]].heapPos[k] = i
	}
	m.heaps[k] = h[:last]
	if int(i) < last {
		if !m.heapDown(k, int(i)) {
			m.heapUp(k, int(i))
		}
	}
}

func (m *Memory) heapUp(k heapKind, i int) {
	h := m.heaps[k]
	for i > 0 {
		p := (i - 1) / 2
		if !m.heapLess(k, h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		m.slots[h[i]].heapPos[k] = int32(i)
		m.slots[h[p]].heapPos[k] = int32(p)
		i = p
	}
}

// heapDown sifts position i of heap k down and reports whether it moved.
func (m *Memory) heapDown(k heapKind, i int) bool {
	h := m.heaps[k]
	n := len(h)
	start := i
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && m.heapLess(k, h[r], h[l]) {
			c = r
		}
		if !m.heapLess(k, h[c], h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		m.slots[h[i]].heapPos[k] = int32(i)
		m.slots[h[c]].heapPos[k] = int32(c)
		i = c
	}
	return i > start
}
