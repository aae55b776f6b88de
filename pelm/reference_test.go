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
	now      int64    // largest Op.Time seen
	expired  []string // ids removed by expiry, in order, since the caller last cleared it
	cov      coverage
	matched  map[string]bool // ids that were candidates of a retrieve since the caller cleared expired
}

// coverage counts the expiry cases the property test means to exercise.
type coverage struct {
	expired        int    // items removed by expiry
	arrivedExpired int    // stores expired on arrival
	whileFull      [2]int // per Eviction: expiries that made room for a store of a new id into a full memory
	afterMatch     int    // items expired after a retrieve of the same batch had them as candidates
	stepBack       int    // ops whose Time was below the clock
}

type refItem struct {
	id    string
	vec   []float64 // unit, float64
	key   int       // items with equal keys have identical input vectors
	phase float64
	conf  float64
	meta  []byte
	order uint64
	time  int64 // the clock when stored
	exp   int64 // Op.Expires; 0: never
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

// advance moves the clock to t if that is later and removes the expired
// items, earliest expiry first, oldest first among equal ones, by brute
// force: the smallest (exp, order) each time.
func (r *refMemory) advance(t int64) {
	if t < r.now {
		r.cov.stepBack++
	}
	r.now = max(r.now, t)
	for {
		v := -1
		for i, it := range r.items {
			if it.exp != 0 && it.exp <= r.now && (v < 0 || it.exp < r.items[v].exp ||
				(it.exp == r.items[v].exp && it.order < r.items[v].order)) {
				v = i
			}
		}
		if v < 0 {
			return
		}
		r.expired = append(r.expired, r.items[v].id)
		r.cov.expired++
		if r.matched[r.items[v].id] {
			r.cov.afterMatch++
		}
		r.items = slices.Delete(r.items, v, v+1)
	}
}

func (r *refMemory) apply(op Op, key int) refResult {
	var res refResult
	full := len(r.items) == r.capacity
	before := len(r.expired)
	r.advance(op.Time)
	if full && len(r.expired) > before && op.Kind == OpStore && r.find(op.ID) < 0 {
		r.cov.whileFull[r.eviction]++
	}
	switch op.Kind {
	case OpStore:
		if i := r.find(op.ID); i >= 0 {
			r.items = slices.Delete(r.items, i, i+1)
			res.replaced = true
		}
		if op.Expires != 0 && op.Expires <= r.now {
			r.expired = append(r.expired, op.ID) // expired on arrival: not stored
			r.cov.arrivedExpired++
			break
		}
		if len(r.items) == r.capacity {
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
			time: r.now, exp: op.Expires,
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
			if r.matched != nil {
				r.matched[it.id] = true
			}
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
