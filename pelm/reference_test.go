package pelm

import (
	"math"
	"slices"
)

// refMemory is the plain one-op-at-a-time model the property test checks
// Memory against: a slice in insertion order, float64 maths, brute force.
type refMemory struct {
	capacity int
	eviction Eviction
	items    []refItem // oldest first
	clock    uint64
}

type refItem struct {
	id    string
	vec   []float64 // unit, float64
	key   int       // items with equal keys have identical input vectors
	phase float64
	conf  float64
	meta  []byte
	order uint64
}

// refCand is one candidate of a retrieve with its float64 score.
type refCand struct {
	refItem
	score float64
}

type refResult struct {
	evicted    string
	hasEvicted bool
	replaced   bool
	found      bool
	cands      []refCand // every candidate, best first
}

func unit64(v []float32) []float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := math.Sqrt(s)
	u := make([]float64, len(v))
	for i, x := range v {
		u[i] = float64(x) / n
	}
	return u
}

func (r *refMemory) find(id string) int {
	return slices.IndexFunc(r.items, func(it refItem) bool { return it.id == id })
}

func (r *refMemory) apply(op Op, key int) refResult {
	var res refResult
	switch op.Kind {
	case OpStore:
		if i := r.find(op.ID); i >= 0 {
			r.items = slices.Delete(r.items, i, i+1)
			res.replaced = true
		} else if len(r.items) == r.capacity {
			v := 0
			if r.eviction == LowestConfidence {
				for i, it := range r.items {
					if it.conf < r.items[v].conf {
						v = i
					}
				}
			}
			res.evicted, res.hasEvicted = r.items[v].id, true
			r.items = slices.Delete(r.items, v, v+1)
		}
		r.clock++
		r.items = append(r.items, refItem{
			id: op.ID, vec: unit64(op.Vector), key: key, phase: op.Phase,
			conf: op.Confidence, meta: slices.Clone(op.Meta), order: r.clock,
		})
	case OpForget:
		if i := r.find(op.ID); i >= 0 {
			r.items = slices.Delete(r.items, i, i+1)
			res.found = true
		}
	case OpRetrieve:
		q := unit64(op.Vector)
		for _, it := range r.items {
			if math.Abs(it.phase-op.Phase) > op.Tolerance || it.conf < op.MinConfidence {
				continue
			}
			var s float64
			for i := range q {
				s += q[i] * it.vec[i]
			}
			res.cands = append(res.cands, refCand{refItem: it, score: s})
		}
		slices.SortFunc(res.cands, func(a, b refCand) int {
			if a.score != b.score {
				if a.score > b.score {
					return -1
				}
				return 1
			}
			if a.order > b.order {
				return -1
			}
			return 1
		})
	}
	return res
}
