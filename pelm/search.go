package pelm

import "sync"

// Tiling of the batch's scores S = Q̂·R̂ᵀ (queries × rows).
//
// Rows live in phase buckets, so S is block-sparse: query q needs only the
// buckets its window [phase−tol, phase+tol] touches. For each bucket, the
// queries touching it are scored against its rows in units of at most
// queryChunk queries × blockRows rows (a block that stays in L2 while the
// unit's queries pass over it). Within a unit the kernel takes the rows in
// sub-blocks of subRows and the queries four at a time (one at a time for
// the last one or two), each call scoring them into a 4 × subRows tile that
// stays in L1,
// and the top-k scan reads the tile at once: no score matrix is stored. The
// units are spread over up to Config.Parallelism goroutines. A score never
// depends on the tiling, the bucket or the goroutine (see kernel.go).
const (
	queryChunk     = 64
	maxBlockRows   = 192
	minBlockRows   = 4
	blockBytes     = 192 << 10 // target size of one block of rows: it stays in L2 while a chunk of queries passes over it
	subBlockBytes  = 24 << 10  // target size of the rows of one kernel call: they stay in L1 while groups of queries pass over them
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

// unit is one piece of a batch's work: the queries
// touch[touchOff[bucket]+q0:][:qn] against rows [r0, r0+nr) of the bucket.
type unit struct {
	bucket, q0, qn, r0, nr int32
}

// searcher scores the retrieves of a batch and keeps their top k.
type searcher struct {
	m         *Memory
	kern      kernel // the scoring kernel: bestKernel(), or another one in tests
	bf16      bool   // run the bfloat16 first pass (with kernelAVX512, when m.stride16 > 0)
	eps16     float32
	q16       []uint16 // the queries rounded to bfloat16, stride16 apart, as q
	blockRows int      // rows per unit: maxBlockRows or fewer for long rows
	subRows   int      // rows per kernel call: a sub-block of a unit that stays in L1
	parWork   int      // multiply-adds that justify going parallel

	q       []float32 // normalised queries, len(queries) × stride, zero padded, then groupQueries−1 zero rows
	queries []query
	kTotal  int // Σ k

	perm    []int32   // sortQueries' scratch
	sortedQ []query   // sortQueries' output, swapped with queries
	sortedV []float32 // sortQueries' output, swapped with q

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
	scores []float32 // groupQueries × subRows tile of S, written by the kernel
	qbuf   []float32 // (queryChunk + groupQueries − 1) × stride: gathered queries of a unit
	qbuf16 []uint16  // the same rounded to bfloat16, stride16 apart (first pass)
	pend   []pending // per query, pendCap rows waiting for their exact score (first pass)
	npend  []int32   // per query, the rows waiting
	exact  []float32 // exact scores of a sub-block for one query (first pass)
	top    topk
}

func (sr *searcher) init(m *Memory, par int) {
	sr.m = m
	sr.kern = bestKernel()
	sr.bf16 = m.stride16 > 0
	sr.eps16 = eps16(m.dim)
	sr.blockRows = min(max(blockBytes/(4*m.stride), minBlockRows), maxBlockRows)
	sr.subRows = min(max(subBlockBytes/(4*m.stride)&^3, 4), sr.blockRows)
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

// sortQueries puts the queries (and their vectors) in the order of their
// windows' buckets (bLo, then bHi). The queries touching a bucket are then
// consecutive whenever the batch's tolerances are equal, and the kernel
// reads them in place, without gathering. Results do not depend on the
// order: each query keeps its own op index and top-k list.
func (sr *searcher) sortQueries() {
	nq := len(sr.queries)
	if nq < 2 {
		return
	}
	stride := sr.m.stride
	if cap(sr.perm) < 2*nq {
		sr.perm = make([]int32, 2*nq)
	}
	tmp, perm := sr.perm[:nq], sr.perm[nq:2*nq]
	// Two stable counting sorts: by bHi, then by bLo. An empty window
	// (bLo > bHi) sorts as any other.
	var count [phaseBuckets + 1]int32
	pass := func(dst, src []int32, key func(q *query) int32) {
		clear(count[:])
		for _, i := range src {
			count[key(&sr.queries[i])+1]++
		}
		for b := 1; b <= phaseBuckets; b++ {
			count[b] += count[b-1]
		}
		for _, i := range src {
			k := key(&sr.queries[i])
			dst[count[k]] = i
			count[k]++
		}
	}
	for i := range perm {
		perm[i] = int32(i)
	}
	pass(tmp, perm, func(q *query) int32 { return q.bHi })
	pass(perm, tmp, func(q *query) int32 { return q.bLo })

	sr.sortedQ = append(sr.sortedQ[:0], sr.queries...)
	if cap(sr.sortedV) < len(sr.q) {
		sr.sortedV = make([]float32, len(sr.q), cap(sr.q))
	}
	sr.sortedV = sr.sortedV[:len(sr.q)]
	for j, i := range perm {
		sr.sortedQ[j] = sr.queries[i]
		copy(sr.sortedV[j*stride:(j+1)*stride], sr.q[int(i)*stride:])
	}
	sr.queries, sr.sortedQ = sr.sortedQ, sr.queries
	sr.q, sr.sortedV = sr.sortedV, sr.q
}

// run scores every query against the buckets it touches and fills each
// worker's top-k lists.
func (sr *searcher) run() {
	m := sr.m
	sr.sortQueries()
	// Zero rows after the last query, read (and their scores ignored) when
	// the last group of a unit has fewer than four queries.
	sr.q = grow(sr.q, (groupQueries-1)*m.stride)
	if sr.firstPass() {
		n := len(sr.q) / m.stride * m.stride16
		if cap(sr.q16) < n {
			sr.q16 = make([]uint16, n, n+n/4)
		}
		sr.q16 = sr.q16[:n]
		for i := range len(sr.q) / m.stride {
			toBF16(sr.q16[i*m.stride16:(i+1)*m.stride16], sr.q[i*m.stride:i*m.stride+m.dim])
		}
	}

	// The queries touching each non-empty bucket, by counting sort.
	var count [phaseBuckets]int32
	for i := range sr.queries {
		q := &sr.queries[i]
		for b := q.bLo; b <= q.bHi; b++ {
			if len(m.buckets[b].info) > 0 {
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
			if len(m.buckets[b].info) > 0 {
				sr.touch[count[b]] = int32(i)
				count[b]++
			}
		}
	}

	// The units, and their cost in multiply-adds / stride.
	sr.units = sr.units[:0]
	cost := 0
	for b := range phaseBuckets {
		nr := len(m.buckets[b].info)
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
		if sr.firstPass() {
			sr.workers[w].preparePending(len(sr.queries))
		}
		sr.workers[w].prepare(len(sr.queries), sr.kTotal, groupQueries*sr.subRows, (queryChunk+groupQueries-1)*m.stride, (queryChunk+groupQueries-1)*m.stride16)
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

// firstPass says whether the batch runs the bfloat16 first pass.
func (sr *searcher) firstPass() bool {
	return sr.bf16 && sr.kern == kernelAVX512 && sr.m.stride16 > 0
}

// work runs worker w's units.
func (sr *searcher) work(w int) {
	m := sr.m
	wk := &sr.workers[w]
	stride, stride16 := m.stride, m.stride16
	kern := sr.kern
	first := sr.firstPass()
	gathered := unit{bucket: -1} // the queries now in wk.qbuf (and wk.qbuf16)
	for _, u := range sr.units[sr.bounds[w]:sr.bounds[w+1]] {
		bk := &m.buckets[u.bucket]
		touch := sr.touch[sr.touchOff[u.bucket]+u.q0:][:u.qn]
		qn, nr := int(u.qn), int(u.nr)
		// qn queries, then at least groupQueries−1 rows of slack.
		var qdata []float32
		var q16 []uint16
		if f := int(touch[0]); int(touch[qn-1])-f == qn-1 {
			// Consecutive queries: no copy.
			qdata = sr.q[f*stride : (f+qn+groupQueries-1)*stride]
			if first {
				q16 = sr.q16[f*stride16 : (f+qn+groupQueries-1)*stride16]
			}
		} else {
			if u.bucket != gathered.bucket || u.q0 != gathered.q0 {
				for j, qi := range touch {
					copy(wk.qbuf[j*stride:(j+1)*stride], sr.q[int(qi)*stride:])
					if first {
						copy(wk.qbuf16[j*stride16:(j+1)*stride16], sr.q16[int(qi)*stride16:])
					}
				}
				gathered = u
			}
			qdata = wk.qbuf[:(qn+groupQueries-1)*stride]
			if first {
				q16 = wk.qbuf16[:(qn+groupQueries-1)*stride16]
			}
		}
		// The rows in sub-blocks small enough to stay in L1 while the
		// groups of queries pass over them.
		for s0 := int(u.r0); s0 < int(u.r0)+nr; s0 += sr.subRows {
			sn := min(sr.subRows, int(u.r0)+nr-s0)
			rows := bk.rows[s0*stride : (s0+sn)*stride]
			info := bk.info[s0 : s0+sn]
			scores := wk.scores[:groupQueries*sn]
			var mx [groupQueries]float32
			j := 0
			// Four queries per pass over the rows; a last group of three
			// is padded with a slack row. A query's scores are read only
			// when the best of them can enter its top k.
			if first && sn >= 4 {
				// The first pass takes every query in groups of four,
				// padding the last group with slack rows: even one query
				// costs less so than in float32.
				rows16 := bk.rows16[s0*stride16 : (s0+sn)*stride16]
				for ; j < qn; j += groupQueries {
					dot4BF16(&q16[j*stride16], &rows16[0], &scores[0], &mx[0], sn, stride16, sn)
					for g := range min(groupQueries, qn-j) {
						qi := touch[j+g]
						if mx[g] >= wk.top.kth[qi]-sr.eps16 {
							sr.offer(wk, u.bucket, s0, scores[g*sn:(g+1)*sn], int(qi))
						}
					}
				}
			}
			for ; qn-j >= groupQueries-1; j += groupQueries {
				kern.dot4(qdata[j*stride:], rows, scores, &mx, sn, stride, sn)
				for g := range min(groupQueries, qn-j) {
					qi := touch[j+g]
					if mx[g] >= wk.top.kth[qi] {
						wk.top.scan(info, scores[g*sn:(g+1)*sn], &sr.queries[qi], int(qi))
					}
				}
			}
			for ; j < qn; j++ {
				qi := touch[j]
				if kern.dot1(qdata[j*stride:], rows, scores, sn, stride) >= wk.top.kth[qi] {
					wk.top.scan(info, scores[:sn], &sr.queries[qi], int(qi))
				}
			}
		}
	}
	if first {
		for qi, n := range wk.npend {
			if n > 0 {
				sr.flush(wk, qi)
			}
		}
	}
}

// pendCap is how many rows a query may have waiting for their exact score
// in the first pass.
const pendCap = 8

// pending is a row waiting for its exact score: row pos of bucket b, whose
// first-pass score is approx.
type pending struct {
	b, pos int32
	approx float32
}

// offer hands query qi the rows of the sub-block at s0 of bucket b whose
// first-pass scores (approx) may reach its k-th best: while its list is
// not full or when many rows qualify, the whole sub-block is scored exactly
// at once; else each such row is prefetched and queued, and scored with
// the next ones, so that their fetches overlap.
func (sr *searcher) offer(wk *worker, b int32, s0 int, approx []float32, qi int) {
	m := sr.m
	stride := m.stride
	n := len(approx)
	thr := wk.top.kth[qi] - sr.eps16
	many := 0
	for _, a := range approx {
		if a >= thr {
			many++
		}
	}
	bk := &m.buckets[b]
	if many > n/4 {
		exact := wk.exact[:n]
		sr.kern.dot1(sr.q[qi*stride:(qi+1)*stride], bk.rows[s0*stride:(s0+n)*stride], exact, n, stride)
		wk.top.scan(bk.info[s0:s0+n], exact, &sr.queries[qi], qi)
		return
	}
	for r, a := range approx {
		if a < thr {
			continue
		}
		pos := s0 + r
		prefetch(&bk.rows[pos*stride], stride*4)
		np := int(wk.npend[qi])
		wk.pend[qi*pendCap+np] = pending{b: b, pos: int32(pos), approx: a}
		wk.npend[qi]++
		if np+1 == pendCap {
			sr.flush(wk, qi)
			thr = wk.top.kth[qi] - sr.eps16
		}
	}
}

// flush scores query qi's queued rows exactly and offers them to its list,
// skipping those that can no longer reach it.
func (sr *searcher) flush(wk *worker, qi int) {
	m := sr.m
	stride := m.stride
	qv := sr.q[qi*stride : (qi+1)*stride]
	q := &sr.queries[qi]
	for _, p := range wk.pend[qi*pendCap : qi*pendCap+int(wk.npend[qi])] {
		if p.approx < wk.top.kth[qi]-sr.eps16 {
			continue
		}
		bk := &m.buckets[p.b]
		var one [1]float32
		sr.kern.dot1(qv, bk.rows[int(p.pos)*stride:int(p.pos+1)*stride], one[:], 1, stride)
		wk.top.scan(bk.info[p.pos:p.pos+1], one[:], q, qi)
	}
	wk.npend[qi] = 0
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
