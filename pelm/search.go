package pelm

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Tiling of the batch's score matrix S = Q̂·R̂ᵀ (queries × rows).
//
// Rows live in phase buckets, so S is block-sparse: query q needs only the
// buckets its window [phase−tol, phase+tol] touches. For each bucket, the
// queries touching it are scored against its rows in units of at most
// queryChunk queries × blockRows rows, each one blas32.Gemm call.
//
// gonum's Sgemm goes parallel, starting goroutines and allocating on every
// call, once its output spans 4 or more 64×64 tiles; below that it runs
// serially without allocating, one full-length dot product per output
// element. Our units stay below (at most 64 × 192 = 3 tiles), and we spread
// the units over our own goroutines instead. A score thus never depends on
// the tiling, the bucket or the number of goroutines.
const (
	queryChunk     = 64
	maxBlockRows   = 192
	minBlockRows   = 4
	blockBytes     = 192 << 10 // target size of one block of rows: it stays in L2 while a chunk of queries passes over it
	defaultParWork = 1 << 20   // multiply-adds below which a batch is scored on the calling goroutine alone
	windowSlack    = 1e-9      // widens a window when choosing buckets, against rounding; the mask is exact
)

// query is one retrieve of the running batch.
type query struct {
	op       int32  // op index in the batch
	k        int32  // TopK
	off      int    // offset of this query's lists in the top-k buffers
	bLo, bHi int32  // buckets its window touches; none when bLo > bHi
	maxOrder uint64 // items of larger order were stored after the op
	phase    float64
	tol      float64
	minConf  float64
}

// unit is one Gemm of the batch: the queries touch[touchOff[bucket]+q0:][:qn]
// against rows [r0, r0+nr) of the bucket.
type unit struct {
	bucket, q0, qn, r0, nr int32
}

// searcher scores the retrieves of a batch and keeps their top k.
type searcher struct {
	m         *Memory
	blockRows int // rows per unit: maxBlockRows or fewer for long rows
	parWork   int // multiply-adds that justify going parallel

	q       []float32 // normalised queries, len(queries) × stride, zero padded
	queries []query
	kTotal  int // Σ k

	touch    []int32                 // per bucket, the queries touching it, in batch order
	touchOff [phaseBuckets + 1]int32 // bucket b's queries are touch[touchOff[b]:touchOff[b+1]]
	units    []unit
	bounds   []int // worker w runs units[bounds[w]:bounds[w+1]]
	nw       int   // goroutines of this batch

	workers []worker // one per goroutine, each with its own lists
	fns     []func() // fns[w] runs worker w ≥ 1 (built once: starting them allocates nothing)
	wg      sync.WaitGroup
	heads   []int // merge cursors, one per worker
}

// worker owns the tiles and the top-k lists of one goroutine.
type worker struct {
	scores []float32 // queryChunk × blockRows tile of S
	qbuf   []float32 // queryChunk × stride: gathered queries of a unit
	top    topk
}

func (sr *searcher) init(m *Memory, par int) {
	sr.m = m
	sr.blockRows = min(max(blockBytes/(4*m.stride), minBlockRows), maxBlockRows)
	sr.parWork = defaultParWork
	sr.workers = make([]worker, par)
	sr.fns = make([]func(), par)
	for w := 1; w < par; w++ {
		sr.fns[w] = func() {
			defer sr.wg.Done()
			sr.work(w)
		}
	}
	sr.heads = make([]int, par)
	sr.bounds = make([]int, par+1)
}

func (sr *searcher) reset() {
	sr.q = sr.q[:0]
	sr.queries = sr.queries[:0]
	sr.kTotal = 0
}

// addQuery records the retrieve op of index i, which sees the items of
// order ≤ maxOrder not removed before it, with its vector scaled by 1/norm.
func (sr *searcher) addQuery(i int, maxOrder uint64, op *Op, norm float64) {
	stride := sr.m.stride
	o := len(sr.q)
	sr.q = grow(sr.q, stride)
	row := sr.q[o : o+stride]
	inv := 1 / norm
	for j, x := range op.Vector {
		row[j] = float32(float64(x) * inv)
	}
	q := query{
		op:       int32(i),
		k:        int32(op.TopK),
		off:      sr.kTotal,
		bLo:      1,
		bHi:      0,
		maxOrder: maxOrder,
		phase:    op.Phase,
		tol:      op.Tolerance,
		minConf:  op.MinConfidence,
	}
	lo := op.Phase - op.Tolerance - windowSlack
	hi := op.Phase + op.Tolerance + windowSlack
	if lo <= hi && hi >= 0 && lo <= 1 {
		q.bLo, q.bHi = int32(phaseBucket(max(lo, 0))), int32(phaseBucket(min(hi, 1)))
	}
	sr.queries = append(sr.queries, q)
	sr.kTotal += op.TopK
}

// run scores every query against the buckets it touches and fills each
// worker's top-k lists.
func (sr *searcher) run() {
	m := sr.m
	// The queries touching each non-empty bucket, by counting sort.
	var count [phaseBuckets]int32
	for i := range sr.queries {
		q := &sr.queries[i]
		for b := q.bLo; b <= q.bHi; b++ {
			if len(m.buckets[b].handles) > 0 {
				count[b]++
			}
		}
	}
	sr.touchOff[0] = 0
	for b := range phaseBuckets {
		sr.touchOff[b+1] = sr.touchOff[b] + count[b]
		count[b] = sr.touchOff[b]
	}
	if n := int(sr.touchOff[phaseBuckets]); cap(sr.touch) < n {
		sr.touch = make([]int32, n, n+n/4)
	}
	sr.touch = sr.touch[:sr.touchOff[phaseBuckets]]
	for i := range sr.queries {
		q := &sr.queries[i]
		for b := q.bLo; b <= q.bHi; b++ {
			if len(m.buckets[b].handles) > 0 {
				sr.touch[count[b]] = int32(i)
				count[b]++
			}
		}
	}

	// The units, and their cost in multiply-adds / stride.
	sr.units = sr.units[:0]
	cost := 0
	for b := range phaseBuckets {
		nr := len(m.buckets[b].handles)
		nq := int(sr.touchOff[b+1] - sr.touchOff[b])
		for q0 := 0; q0 < nq; q0 += queryChunk {
			qn := min(queryChunk, nq-q0)
			for r0 := 0; r0 < nr; r0 += sr.blockRows {
				u := unit{bucket: int32(b), q0: int32(q0), qn: int32(qn), r0: int32(r0), nr: int32(min(sr.blockRows, nr-r0))}
				sr.units = append(sr.units, u)
				cost += int(u.qn) * int(u.nr)
			}
		}
	}

	// Contiguous runs of units of about equal cost, one per goroutine.
	sr.nw = 1
	if cost*m.stride >= sr.parWork {
		sr.nw = max(1, min(len(sr.workers), len(sr.units)))
	}
	sr.bounds[0] = 0
	w, acc := 1, 0
	for i, u := range sr.units {
		acc += int(u.qn) * int(u.nr)
		for w < sr.nw && acc*sr.nw >= cost*w {
			sr.bounds[w] = i + 1
			w++
		}
	}
	for ; w <= sr.nw; w++ {
		sr.bounds[w] = len(sr.units)
	}

	for w := range sr.nw {
		sr.workers[w].prepare(len(sr.queries), sr.kTotal, queryChunk*sr.blockRows, queryChunk*m.stride)
	}
	if len(sr.units) == 0 {
		return
	}
	sr.wg.Add(sr.nw - 1)
	for w := 1; w < sr.nw; w++ {
		go sr.fns[w]()
	}
	sr.work(0)
	sr.wg.Wait()
}

// work runs worker w's units.
func (sr *searcher) work(w int) {
	m := sr.m
	wk := &sr.workers[w]
	stride := m.stride
	gathered := unit{bucket: -1} // the queries now in wk.qbuf
	for _, u := range sr.units[sr.bounds[w]:sr.bounds[w+1]] {
		bk := &m.buckets[u.bucket]
		touch := sr.touch[sr.touchOff[u.bucket]+u.q0:][:u.qn]
		qn, nr := int(u.qn), int(u.nr)
		var qdata []float32
		if first := int(touch[0]); int(touch[qn-1])-first == qn-1 {
			qdata = sr.q[first*stride : (first+qn)*stride] // consecutive queries: no copy
		} else {
			if u.bucket != gathered.bucket || u.q0 != gathered.q0 {
				for j, qi := range touch {
					copy(wk.qbuf[j*stride:(j+1)*stride], sr.q[int(qi)*stride:])
				}
				gathered = u
			}
			qdata = wk.qbuf[:qn*stride]
		}
		qs := blas32.General{Rows: qn, Cols: stride, Stride: stride, Data: qdata}
		rows := blas32.General{Rows: nr, Cols: stride, Stride: stride, Data: bk.rows[int(u.r0)*stride : (int(u.r0)+nr)*stride]}
		s := blas32.General{Rows: qn, Cols: nr, Stride: nr, Data: wk.scores[:qn*nr]}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, qs, rows, 0, s)
		handles := bk.handles[u.r0 : int(u.r0)+nr]
		for j, qi := range touch {
			wk.top.scan(handles, m.slots, s.Data[j*nr:(j+1)*nr], &sr.queries[qi], int(qi))
		}
	}
}

// emit writes each retrieve's matches, best first, merging the workers'
// lists when several goroutines ran.
func (sr *searcher) emit(ops []Op, results []Result) {
	m := sr.m
	for qi := range sr.queries {
		q := &sr.queries[qi]
		r := &results[q.op]
		withVec := ops[q.op].WithVectors
		if withVec {
			if need := int(q.k) * m.dim; cap(r.vectors) < need {
				r.vectors = make([]float32, 0, need)
			}
			r.vectors = r.vectors[:0]
		}
		if sr.nw == 1 {
			t := &sr.workers[0].top
			base := q.off
			for j := range int(t.n[qi]) {
				m.appendMatch(r, t.slot[base+j], t.score[base+j], withVec)
			}
		} else {
			sr.merge(q, qi, r, withVec)
		}
	}
}

// merge appends the best q.k entries of the workers' sorted lists.
func (sr *searcher) merge(q *query, qi int, r *Result, withVec bool) {
	heads := sr.heads[:sr.nw]
	clear(heads)
	base := q.off
	for range int(q.k) {
		best := -1
		var bs float32
		var bo uint64
		for w := range heads {
			t := &sr.workers[w].top
			h := heads[w]
			if h == int(t.n[qi]) {
				continue
			}
			s, o := t.score[base+h], t.order[base+h]
			if best < 0 || s > bs || (s == bs && o > bo) {
				best, bs, bo = w, s, o
			}
		}
		if best < 0 {
			return
		}
		t := &sr.workers[best].top
		sr.m.appendMatch(r, t.slot[base+heads[best]], bs, withVec)
		heads[best]++
	}
}

// appendMatch appends slot s as a match of r. With withVec it copies the
// slot's vector into r.vectors, which has room for it.
func (m *Memory) appendMatch(r *Result, s int32, score float32, withVec bool) {
	sl := &m.slots[s]
	mt := Match{ID: m.ids[s], Score: score, Phase: sl.phase, Confidence: sl.conf, Meta: m.meta[s]}
	if withVec {
		o := len(r.vectors)
		r.vectors = append(r.vectors, m.row(s)[:m.dim]...)
		mt.Vector = r.vectors[o : o+m.dim : o+m.dim]
	}
	r.Matches = append(r.Matches, mt)
}
