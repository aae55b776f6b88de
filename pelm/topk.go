package pelm

import "math"

// topk holds, for every query of a batch, a fixed-size list of its best
// candidates so far, sorted best first: higher score, then larger order
// (newer) among equal scores. Query qi's list lives at [off, off+k) of the
// three parallel arrays and holds n[qi] entries. A candidate is compared with
// the list's last entry before anything else, so most rows cost one float
// comparison; an accepted one is inserted by shifting the worse entries
// (no sort, no heap).
type topk struct {
	score []float32
	order []uint64
	slot  []int32
	n     []int32
	kth   []float32 // per query: the score to reach, −Inf until the list is full
}

// prepare sizes w for nq queries whose k sum to kTotal, with tile floats of
// scores and room for qtile floats and qtile16 bfloat16 values of gathered
// queries, and empties every list. It allocates only when the batch is larger
// than any before.
func (w *worker) prepare(nq, kTotal, tile, qtile, qtile16 int) {
	if cap(w.scores) < tile {
		w.scores = make([]float32, tile)
		w.exact = make([]float32, tile/groupQueries)
	}
	w.scores = w.scores[:tile]
	w.exact = w.exact[:tile/groupQueries]
	if cap(w.qbuf16) < qtile16 {
		w.qbuf16 = make([]uint16, qtile16)
	}
	w.qbuf16 = w.qbuf16[:qtile16]
	if cap(w.qbuf) < qtile {
		w.qbuf = make([]float32, qtile)
	}
	w.qbuf = w.qbuf[:qtile]
	t := &w.top
	if cap(t.score) < kTotal {
		t.score = make([]float32, kTotal)
		t.order = make([]uint64, kTotal)
		t.slot = make([]int32, kTotal)
	}
	t.score, t.order, t.slot = t.score[:kTotal], t.order[:kTotal], t.slot[:kTotal]
	if cap(t.n) < nq {
		t.n = make([]int32, nq)
		t.kth = make([]float32, nq)
	}
	t.n = t.n[:nq]
	clear(t.n)
	t.kth = t.kth[:nq]
	for i := range t.kth {
		t.kth[i] = float32(math.Inf(-1))
	}
}

// preparePending sizes w's queues of rows waiting for their exact score
// for nq queries, all empty.
func (w *worker) preparePending(nq int) {
	if cap(w.npend) < nq {
		w.npend = make([]int32, nq)
		w.pend = make([]pending, nq*pendCap)
	}
	w.npend = w.npend[:nq]
	clear(w.npend)
}

// scan offers the rows of info (scores in the same order) to query q,
// the qi-th of the batch. A row is a candidate when the op q stems from can
// see its item (stored before it: order ≤ maxOrder; not removed before it),
// its phase is within the window and its confidence at least the minimum.
func (t *topk) scan(info []rowInfo, scores []float32, q *query, qi int) {
	k := int(q.k)
	base := q.off
	sc := t.score[base : base+k : base+k]
	or := t.order[base : base+k : base+k]
	sl := t.slot[base : base+k : base+k]
	n := int(t.n[qi])
	kth := float32(math.Inf(-1))
	if n == k {
		kth = sc[k-1]
	}
	info = info[:len(scores)]
	for j, s := range scores {
		if s < kth {
			continue
		}
		x := &info[j]
		if x.order > q.maxOrder || x.removedAt < q.op {
			continue // stored after, or removed before, the retrieve
		}
		d := x.phase - q.phase
		if d < 0 {
			d = -d
		}
		if !(d <= q.tol) || x.conf < q.minConf {
			continue
		}
		if n == k {
			if s == kth && x.order < or[k-1] {
				continue
			}
			n-- // drop the worst
		}
		p := n
		for p > 0 && (sc[p-1] < s || (sc[p-1] == s && or[p-1] < x.order)) {
			sc[p], or[p], sl[p] = sc[p-1], or[p-1], sl[p-1]
			p--
		}
		sc[p], or[p], sl[p] = s, x.order, x.handle
		n++
		if n == k {
			kth = sc[k-1]
		}
	}
	t.n[qi] = int32(n)
	t.kth[qi] = kth
}
