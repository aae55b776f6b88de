package pelm

import (
	"fmt"
	"math"
)

// Apply executes ops as if one by one in order and writes results[i] for
// ops[i]. It panics, before changing anything, when len(results) < len(ops)
// or an op breaks a precondition documented on Op (unknown Kind, a vector
// whose length is not Dim or whose norm is zero or not finite, an ID not of
// 1..MaxIDLen bytes, a phase or confidence outside [0, 1], a negative
// Expires, TopK outside 1..MaxTopK, a NaN tolerance or min confidence).
//
// Before op i takes effect, the clock advances to Op.Time if that is later,
// and every item whose Expires is not 0 and at most the clock is removed,
// as a forget at op i would remove it (see Op.Time, Op.Expires and
// Expired).
//
// Apply runs in three steps (see the package documentation): the structural
// effects of every op in order, then one blocked pass of the scoring kernel
// over all the retrieves and the rows of the phase buckets their windows
// touch, then the removal of the removed rows. The results are those of executing the
// ops one at a time.
func (m *Memory) Apply(ops []Op, results []Result) {
	if len(results) < len(ops) {
		panic(fmt.Sprintf("pelm: Apply with %d ops but %d results", len(ops), len(results)))
	}
	if len(ops) >= notRemoved {
		panic(fmt.Sprintf("pelm: Apply with %d ops", len(ops)))
	}
	m.validate(ops)
	m.expired = m.expired[:0]

	// Step 1: structure, in op order. Stores append fresh rows with
	// increasing orders, removals (expiry included) mark removedAt; no row
	// moves.
	sr := &m.search
	sr.reset()
	for i := range ops {
		op := &ops[i]
		r := &results[i]
		r.Evicted, r.HasEvicted, r.Replaced, r.Found = "", false, false, false
		r.Matches = r.Matches[:0]
		if op.Time > m.now {
			m.now = op.Time
		}
		if m.due() {
			m.expire(i)
		}
		switch op.Kind {
		case OpStore:
			id := op.ID
			if s, ok := m.index[id]; ok {
				id = m.ids[s] // keep the stored string, not the caller's
				m.removeSlot(s, i)
				r.Replaced = true
			}
			if op.Expires != 0 && op.Expires <= m.now {
				// Expired on arrival (the clock is already past it):
				// stored and expired at once, so nothing is stored and
				// nothing evicted.
				m.expired = append(m.expired, id)
				break
			}
			if m.live == m.capacity {
				v := m.victim()
				r.Evicted, r.HasEvicted = m.ids[v], true
				m.removeSlot(v, i)
			}
			m.appendSlot(id, op.Vector, m.norms[i], op.Phase, op.Confidence, op.Meta, m.now, op.Expires)
		case OpForget:
			if s, ok := m.index[op.ID]; ok {
				m.removeSlot(s, i)
				r.Found = true
			}
		case OpRetrieve:
			sr.addQuery(i, m.clock, op, m.norms[i])
		}
	}

	// Step 2: every retrieve of the batch in one blocked pass over the rows.
	if len(sr.queries) > 0 {
		sr.run()
		sr.emit(ops, results)
	}

	// Step 3: drop the removed slots.
	if len(m.removed) > 0 {
		m.compact()
	}
}

// Expire advances the clock to now, if that is later, and removes every item
// expired at the clock, outside a batch (for an info op, or housekeeping
// between requests). It returns how many it removed; Expired lists them.
func (m *Memory) Expire(now int64) int {
	m.expired = m.expired[:0]
	if now > m.now {
		m.now = now
	}
	m.expire(0)
	if len(m.removed) > 0 {
		m.compact()
	}
	return len(m.expired)
}

// Expired returns the ids of the items removed by expiry during the last
// Apply or Expire, in the order they were removed: by op, and within an op
// the earliest Expires first, the oldest (smallest Order) first among equal
// ones; a store that arrives expired (Op.Expires) is listed at its op,
// after the items that expired before it. The caller must not modify the
// slice; it is valid until the next Apply or Expire, which reuse its array.
func (m *Memory) Expired() []string { return m.expired }

// Now returns the memory's clock: the largest Op.Time of every op applied
// so far and of every Expire argument, or 0 when none was larger. It never
// moves back.
func (m *Memory) Now() int64 { return m.now }

// validate panics on the first op that breaks a precondition, and records
// the norm of every store and retrieve vector in m.norms.
func (m *Memory) validate(ops []Op) {
	if cap(m.norms) < len(ops) {
		m.norms = make([]float64, len(ops), len(ops)+len(ops)/4)
	}
	m.norms = m.norms[:len(ops)]
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case OpStore:
			checkID(i, op.ID)
			checkUnit(i, "phase", op.Phase)
			checkUnit(i, "confidence", op.Confidence)
			if op.Expires < 0 {
				panic(fmt.Sprintf("pelm: op %d: expires %d < 0", i, op.Expires))
			}
		case OpRetrieve:
			checkUnit(i, "phase", op.Phase)
			if op.TopK < 1 || op.TopK > MaxTopK {
				panic(fmt.Sprintf("pelm: op %d: top_k %d not in [1, %d]", i, op.TopK, MaxTopK))
			}
			if math.IsNaN(op.Tolerance) || math.IsNaN(op.MinConfidence) {
				panic(fmt.Sprintf("pelm: op %d: NaN tolerance or min confidence", i))
			}
		case OpForget:
			checkID(i, op.ID)
			continue
		default:
			panic(fmt.Sprintf("pelm: op %d: invalid kind %d", i, uint8(op.Kind)))
		}
		if len(op.Vector) != m.dim {
			panic(fmt.Sprintf("pelm: op %d: vector of length %d, memory dimension %d", i, len(op.Vector), m.dim))
		}
		n := norm(op.Vector)
		if n == 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			panic(fmt.Sprintf("pelm: op %d: vector norm %v", i, n))
		}
		m.norms[i] = n
	}
}

func checkID(i int, id string) {
	if len(id) == 0 || len(id) > MaxIDLen {
		panic(fmt.Sprintf("pelm: op %d: id of %d bytes, want 1..%d", i, len(id), MaxIDLen))
	}
}

func checkUnit(i int, what string, x float64) {
	if !(x >= 0 && x <= 1) {
		panic(fmt.Sprintf("pelm: op %d: %s %v not in [0, 1]", i, what, x))
	}
}

// norm returns the Euclidean norm √(Σ vᵢ²) of v, accumulated in float64.
// It is +Inf or NaN when v holds a non-finite value.
func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		f := float64(x)
		s += f * f
	}
	return math.Sqrt(s)
}
