package pelm

// The LowestConfidence eviction order: an indexed binary min-heap of live
// slots keyed on (confidence, order), so the root is the lowest confidence
// and, among equal confidences, the oldest. slot.heapPos tracks each slot's
// position so any slot is removed in O(log n). No interfaces, no boxing.

// heapLess orders slot a before slot b.
func (m *Memory) heapLess(a, b int32) bool {
	x, y := &m.slots[a], &m.slots[b]
	return x.conf < y.conf || (x.conf == y.conf && x.order < y.order)
}

func (m *Memory) heapPush(s int32) {
	m.heap = append(m.heap, s)
	i := len(m.heap) - 1
	m.slots[s].heapPos = int32(i)
	m.heapUp(i)
}

// heapRemove removes the element at heap position i.
func (m *Memory) heapRemove(i int32) {
	last := len(m.heap) - 1
	s := m.heap[i]
	m.slots[s].heapPos = -1
	if int(i) != last {
		m.heap[i] = m.heap[last]
		m.slots[m.heap[i]].heapPos = i
	}
	m.heap = m.heap[:last]
	if int(i) < last {
		if !m.heapDown(int(i)) {
			m.heapUp(int(i))
		}
	}
}

func (m *Memory) heapUp(i int) {
	h := m.heap
	for i > 0 {
		p := (i - 1) / 2
		if !m.heapLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		m.slots[h[i]].heapPos = int32(i)
		m.slots[h[p]].heapPos = int32(p)
		i = p
	}
}

// heapDown sifts position i down and reports whether it moved.
func (m *Memory) heapDown(i int) bool {
	h := m.heap
	n := len(h)
	start := i
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && m.heapLess(h[r], h[l]) {
			c = r
		}
		if !m.heapLess(h[c], h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		m.slots[h[i]].heapPos = int32(i)
		m.slots[h[c]].heapPos = int32(c)
		i = c
	}
	return i > start
}
