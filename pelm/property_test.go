package pelm

import (
	"bytes"
	"fmt"
	"math"
	mrand "math/rand"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/quick"
)

// scoreEps bounds the float32 error of a score at the small dimensions the
// property test uses, and is the distance under which two reference scores
// of different vectors count as a possible tie.
const scoreEps = 1e-5

// gen draws random batches for one seed.
type gen struct {
	r    *rand.Rand
	dim  int
	ids  []string
	pool [][]float32 // shared vectors: exact score ties between items
	next int         // next fresh vector key (keys < len(pool) are the pool's)
	meta []byte      // one buffer for every op's meta, overwritten after Apply
	time int64       // the stream time of the last op drawn
}

func newGen(seed uint64, dim, capacity int) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), dim: dim}
	g.time = int64(g.r.IntN(100)) - 50 // any clock: sometimes negative
	for i := range 2*capacity + 3 {
		g.ids = append(g.ids, fmt.Sprintf("id-%d", i))
	}
	for range 4 {
		g.pool = append(g.pool, g.fresh())
	}
	g.next = len(g.pool)
	return g
}

func (g *gen) fresh() []float32 {
	v := make([]float32, g.dim)
	for {
		nz := false
		for i := range v {
			v[i] = float32(g.r.Float64()*2 - 1)
			nz = nz || v[i] != 0
		}
		if nz {
			return v
		}
	}
}

// vector returns a vector and its key: a pool vector a third of the time.
func (g *gen) vector() ([]float32, int) {
	if g.r.IntN(3) == 0 {
		k := g.r.IntN(len(g.pool))
		return g.pool[k], k
	}
	g.next++
	return g.fresh(), g.next
}

// unitValue returns a value in [0, 1]: often on a coarse binary grid (so
// that ties and window edges are exact), sometimes 0 or 1, else uniform.
func (g *gen) unitValue() float64 {
	switch g.r.IntN(4) {
	case 0:
		return float64(g.r.IntN(9)) / 8
	case 1:
		return float64(g.r.IntN(2))
	default:
		return g.r.Float64()
	}
}

// tick draws the stream time of the next op: mostly a step of 1 to 3 later,
// often the same, sometimes earlier (a server's clock stepped back), now
// and then much later (many items expire at once).
func (g *gen) tick() int64 {
	switch c := g.r.IntN(20); {
	case c < 11:
		g.time += 1 + int64(g.r.IntN(3))
	case c < 16:
	case c < 19:
		g.time -= 1 + int64(g.r.IntN(6))
	default:
		g.time += 10 + int64(g.r.IntN(30))
	}
	return g.time
}

// expires draws a store's Op.Expires: none for half of them, else its Time
// plus a short ttl (0 to 24, so that items expire within a batch or the
// next ones, and some on arrival), or 0 where that is not positive.
func (g *gen) expires(t int64) int64 {
	if g.r.IntN(2) == 0 {
		return 0
	}
	return max(t+int64(g.r.IntN(25)), 0)
}

// batch draws n ops: stores, forgets and retrieves in ratio 5:2:3, or
// 2:1:7 when retrieveHeavy (so that more than queryChunk retrieves share
// a bucket), each with a stream time from tick.
func (g *gen) batch(n int, retrieveHeavy bool) ([]Op, []int) {
	storeBelow, forgetBelow := 5, 7
	if retrieveHeavy {
		storeBelow, forgetBelow = 2, 3
	}
	ops := make([]Op, n)
	keys := make([]int, n)
	g.meta = g.meta[:0]
	for i := range ops {
		op := &ops[i]
		op.Time = g.tick()
		switch c := g.r.IntN(10); {
		case c < storeBelow:
			op.Kind = OpStore
			op.Expires = g.expires(op.Time)
			op.ID = g.ids[g.r.IntN(len(g.ids))]
			op.Vector, keys[i] = g.vector()
			op.Phase = g.unitValue()
			op.Confidence = g.unitValue()
			if g.r.IntN(3) > 0 {
				o := len(g.meta)
				for range g.r.IntN(6) + 1 {
					g.meta = append(g.meta, byte(g.r.IntN(256)))
				}
				op.Meta = g.meta[o:len(g.meta):len(g.meta)]
			}
		case c < forgetBelow:
			op.Kind = OpForget
			op.ID = g.ids[g.r.IntN(len(g.ids))]
		default:
			op.Kind = OpRetrieve
			op.Vector, keys[i] = g.vector()
			op.Phase = g.unitValue()
			op.Tolerance = g.unitValue()
			if g.r.IntN(4) == 0 {
				op.Tolerance = 0
			}
			op.TopK = 1 + g.r.IntN(12)
			if g.r.IntN(3) == 0 {
				op.MinConfidence = g.unitValue()
			}
			op.WithVectors = g.r.IntN(2) == 0
		}
	}
	return ops, keys
}

// runSeed checks a random memory against refMemory over many batches and
// returns the first disagreement. It adds the expiry cases met to cov.
func runSeed(seed uint64, cov *coverage) error {
	r := rand.New(rand.NewPCG(seed, 1))
	dim := 2 + r.IntN(15)
	capacity := 1 + r.IntN(50)
	cfg := Config{Dim: dim, Capacity: capacity, Eviction: Eviction(r.IntN(2)), Parallelism: 1 + r.IntN(3)}
	m, err := New(cfg)
	if err != nil {
		return err
	}
	if r.IntN(2) == 0 { // force small blocks and the parallel path
		m.search.blockRows = 1 + r.IntN(8)
		m.search.subRows = 1 + int(seed>>8)%m.search.blockRows
		m.search.parWork = 0
	}
	ks := kernels() // every kernel the CPU runs, in turn
	m.search.kern = ks[seed%uint64(len(ks))]
	ref := &refMemory{capacity: capacity, eviction: cfg.Eviction, matched: map[string]bool{}}
	defer func() {
		cov.expired += ref.cov.expired
		cov.arrivedExpired += ref.cov.arrivedExpired
		cov.whileFull[0] += ref.cov.whileFull[0]
		cov.whileFull[1] += ref.cov.whileFull[1]
		cov.afterMatch += ref.cov.afterMatch
		cov.stepBack += ref.cov.stepBack
	}()
	g := newGen(seed, dim, capacity)
	var results []Result // reused across batches, as the processor does
	for b := range 30 {
		n := 1 + r.IntN(40)
		heavy := b == 19 // once per seed
		if heavy {
			n = 100 + r.IntN(100)
		}
		ops, keys := g.batch(n, heavy)
		if len(results) < n {
			results = append(results, make([]Result, n-len(results))...)
		}
		m.Apply(ops, results)
		ref.expired = ref.expired[:0]
		clear(ref.matched)
		wants := make([]refResult, n)
		for i, op := range ops {
			wants[i] = ref.apply(op, keys[i])
		}
		if got := m.Expired(); !slices.Equal(got, ref.expired) {
			return fmt.Errorf("cfg %+v batch %d: expired %q, want %q", cfg, b, got, ref.expired)
		}
		for i := range g.meta { // the caller reuses its buffers
			g.meta[i] = ^g.meta[i]
		}
		for i, op := range ops {
			if err := checkResult(op, results[i], wants[i]); err != nil {
				return fmt.Errorf("cfg %+v batch %d op %d (%v): %w", cfg, b, i, op.Kind, err)
			}
		}
		if err := checkState(m, ref); err != nil {
			return fmt.Errorf("cfg %+v after batch %d: %w", cfg, b, err)
		}
		if r.IntN(4) == 0 { // housekeeping between batches
			t := g.tick()
			ref.expired = ref.expired[:0]
			clear(ref.matched)
			ref.advance(t)
			if n := m.Expire(t); n != len(ref.expired) || !slices.Equal(m.Expired(), ref.expired) {
				return fmt.Errorf("cfg %+v Expire(%d) after batch %d: %d, %q, want %q", cfg, t, b, n, m.Expired(), ref.expired)
			}
			if err := checkState(m, ref); err != nil {
				return fmt.Errorf("cfg %+v after Expire(%d): %w", cfg, t, err)
			}
		}
	}
	return nil
}

func checkResult(op Op, got Result, want refResult) error {
	if got.Replaced != want.replaced || got.Found != want.found ||
		got.HasEvicted != want.hasEvicted || got.Evicted != want.evicted {
		return fmt.Errorf("got replaced %v found %v evicted %v %q, want %v %v %v %q",
			got.Replaced, got.Found, got.HasEvicted, got.Evicted,
			want.replaced, want.found, want.hasEvicted, want.evicted)
	}
	if op.Kind != OpRetrieve {
		if len(got.Matches) != 0 {
			return fmt.Errorf("%d matches for a %v", len(got.Matches), op.Kind)
		}
		return nil
	}
	return checkMatches(op, got.Matches, want.cands)
}

// checkMatches compares a retrieve with the reference's sorted candidates.
// Positions are compared exactly unless the reference score there is within
// scoreEps of a candidate with a different vector (float rounding may then
// order them either way); identical vectors must tie exactly, newest first.
func checkMatches(op Op, got []Match, cands []refCand) error {
	return checkMatchesEps(op, got, cands, scoreEps)
}

// checkMatchesEps is checkMatches with eps in place of scoreEps.
func checkMatchesEps(op Op, got []Match, cands []refCand, eps float64) error {
	want := min(op.TopK, len(cands))
	if len(got) != want {
		return fmt.Errorf("%d matches, want %d", len(got), want)
	}
	byID := map[string]refCand{}
	for _, c := range cands {
		byID[c.id] = c
	}
	seen := map[string]bool{}
	for j, g := range got {
		c, ok := byID[g.ID]
		if !ok {
			return fmt.Errorf("match %d: %q is not a candidate", j, g.ID)
		}
		if seen[g.ID] {
			return fmt.Errorf("match %d: %q twice", j, g.ID)
		}
		seen[g.ID] = true
		if math.Abs(float64(g.Score)-c.score) > eps {
			return fmt.Errorf("match %d %q: score %v, want %v", j, g.ID, g.Score, c.score)
		}
		if g.Phase != c.phase || g.Confidence != c.conf || !bytes.Equal(g.Meta, c.meta) {
			return fmt.Errorf("match %d %q: phase %v conf %v meta %x, want %v %v %x",
				j, g.ID, g.Phase, g.Confidence, g.Meta, c.phase, c.conf, c.meta)
		}
		if op.WithVectors {
			if len(g.Vector) != len(c.vec) {
				return fmt.Errorf("match %d: vector len %d", j, len(g.Vector))
			}
			for i := range c.vec {
				if math.Abs(float64(g.Vector[i])-c.vec[i]) > 1e-6 {
					return fmt.Errorf("match %d: vector %v, want %v", j, g.Vector, c.vec)
				}
			}
		} else if g.Vector != nil {
			return fmt.Errorf("match %d: vector without WithVectors", j)
		}
		if j > 0 {
			p := byID[got[j-1].ID]
			s0, s1 := got[j-1].Score, g.Score
			if s0 < s1 || (s0 == s1 && p.order < c.order) {
				return fmt.Errorf("matches %d, %d out of order: (%v, %d) then (%v, %d)", j-1, j, s0, p.order, s1, c.order)
			}
			if p.key == c.key && s0 != s1 {
				return fmt.Errorf("matches %d, %d: identical vectors score %v and %v", j-1, j, s0, s1)
			}
		}
		w := cands[j]
		if g.ID == w.id {
			continue
		}
		near := false
		for _, o := range cands {
			if o.key != w.key && math.Abs(o.score-w.score) <= eps {
				near = true
			}
		}
		if !near {
			return fmt.Errorf("match %d: %q (score %v, order %d), want %q (score %v, order %d)",
				j, g.ID, g.Score, c.order, w.id, w.score, w.order)
		}
		if math.Abs(c.score-w.score) > 2*eps {
			return fmt.Errorf("match %d: %q score %v, want about %v", j, g.ID, c.score, w.score)
		}
	}
	return nil
}

// checkState compares every stored item, in insertion order, and Get.
func checkState(m *Memory, ref *refMemory) error {
	if m.Len() != len(ref.items) {
		return fmt.Errorf("Len %d, want %d", m.Len(), len(ref.items))
	}
	i := 0
	var err error
	m.Items(func(it Item) bool {
		w := ref.items[i]
		if it.ID != w.id || it.Order != w.order || it.Phase != w.phase || it.Confidence != w.conf || !bytes.Equal(it.Meta, w.meta) ||
			it.Time != w.time || it.Expires != w.exp {
			err = fmt.Errorf("item %d: %q order %d phase %v conf %v meta %x time %d expires %d, want %q %d %v %v %x %d %d",
				i, it.ID, it.Order, it.Phase, it.Confidence, it.Meta, it.Time, it.Expires, w.id, w.order, w.phase, w.conf, w.meta, w.time, w.exp)
			return false
		}
		for d := range w.vec {
			if math.Abs(float64(it.Vector[d])-w.vec[d]) > 1e-6 {
				err = fmt.Errorf("item %d %q: vector %v, want %v", i, it.ID, it.Vector, w.vec)
				return false
			}
		}
		if g, ok := m.Get(it.ID); !ok || g.Order != it.Order {
			err = fmt.Errorf("Get(%q) = %v, %v", it.ID, g.Order, ok)
			return false
		}
		i++
		return true
	})
	if err != nil {
		return err
	}
	if i != len(ref.items) {
		return fmt.Errorf("Items visited %d, want %d", i, len(ref.items))
	}
	if err := checkLayout(m); err != nil {
		return err
	}
	if m.Now() != ref.now {
		return fmt.Errorf("Now %d, want %d", m.Now(), ref.now)
	}
	withExpiry := 0
	for _, it := range ref.items {
		if it.exp != 0 {
			withExpiry++
		}
	}
	if err := checkHeap(m, expHeap, withExpiry); err != nil {
		return err
	}
	if m.eviction == LowestConfidence {
		if err := checkHeap(m, confHeap, m.live); err != nil {
			return err
		}
	}
	return nil
}

// checkLayout checks that between batches every row is live and every
// live slot's row is where it says, in its phase's bucket.
func checkLayout(m *Memory) error {
	if len(m.slots)-len(m.free) != m.live || len(m.index) != m.live {
		return fmt.Errorf("%d slots, %d free, %d indexed, %d live", len(m.slots), len(m.free), len(m.index), m.live)
	}
	rows := 0
	for b, bk := range m.buckets {
		if len(bk.rows) != len(bk.info)*m.stride {
			return fmt.Errorf("bucket %d: %d floats for %d rows", b, len(bk.rows), len(bk.info))
		}
		for i, x := range bk.info {
			h := x.handle
			sl := m.slots[h]
			if x.order != sl.order || x.phase != sl.phase || x.conf != sl.conf {
				return fmt.Errorf("bucket %d row %d: info %+v, slot %d %+v", b, i, x, h, sl)
			}
			if int(sl.bucket) != b || int(sl.pos) != i || x.removedAt != notRemoved || phaseBucket(sl.phase) != b {
				return fmt.Errorf("bucket %d row %d: slot %d says bucket %d pos %d, row removedAt %d, phase %v", b, i, h, sl.bucket, sl.pos, x.removedAt, sl.phase)
			}
			if m.index[m.ids[h]] != h {
				return fmt.Errorf("slot %d (%q) not indexed", h, m.ids[h])
			}
		}
		if m.stride16 > 0 {
			if len(bk.rows16) != len(bk.info)*m.stride16 {
				return fmt.Errorf("bucket %d: %d bfloat16 values for %d rows", b, len(bk.rows16), len(bk.info))
			}
			want := make([]uint16, m.stride16)
			for i := range bk.info {
				toBF16(want, bk.rows[i*m.stride:i*m.stride+m.dim])
				if !slices.Equal(bk.rows16[i*m.stride16:(i+1)*m.stride16], want) {
					return fmt.Errorf("bucket %d row %d: bfloat16 copy differs", b, i)
				}
			}
		}
		rows += len(bk.info)
	}
	if rows != m.live {
		return fmt.Errorf("%d rows, %d live", rows, m.live)
	}
	return nil
}

// checkHeap checks heap k: n entries, positions tracked, heap order, and
// (expiry heap) no entry expired at the clock.
func checkHeap(m *Memory, k heapKind, n int) error {
	h := m.heaps[k]
	if len(h) != n {
		return fmt.Errorf("heap %d of %d, want %d", k, len(h), n)
	}
	for i, s := range h {
		if int(m.slots[s].heapPos[k]) != i {
			return fmt.Errorf("heap %d: [%d] = slot %d with heapPos %d", k, i, s, m.slots[s].heapPos[k])
		}
		if i > 0 && m.heapLess(k, s, h[(i-1)/2]) {
			return fmt.Errorf("heap %d order broken at %d", k, i)
		}
	}
	if k == expHeap && m.due() {
		return fmt.Errorf("item %q expired at %d still held", m.ids[h[0]], m.now)
	}
	return nil
}

// fixedSeeds are checked on every run; TestApplyMatchesReferenceQuick adds
// more, drawn from a fixed source so failures reproduce.
var fixedSeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765, 10946, 0xdeadbeef, 0xfeedface, 42, 4242, 424242}

func TestApplyMatchesReference(t *testing.T) {
	var cov coverage
	for _, seed := range fixedSeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			if err := runSeed(seed, &cov); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The generator must reach every expiry case, often.
	t.Logf("expiry coverage: %+v", cov)
	if cov.expired < 1000 || cov.arrivedExpired < 50 || cov.whileFull[FIFO] < 20 || cov.whileFull[LowestConfidence] < 20 || cov.afterMatch < 50 || cov.stepBack < 100 {
		t.Errorf("expiry cases too rare: %+v", cov)
	}
}

func TestApplyMatchesReferenceQuick(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 30
	}
	cfg := &quick.Config{MaxCount: n, Rand: mrand.New(mrand.NewSource(7))}
	var failure error
	var cov coverage
	f := func(seed uint64) bool {
		failure = runSeed(seed, &cov)
		return failure == nil
	}
	if err := quick.Check(f, cfg); err != nil {
		t.Fatalf("%v: %v", err, failure)
	}
}

// TestApplyMatchesReferenceLarge checks realistic sizes: default blocks,
// several blocks per bucket, several query chunks, two goroutines.
func TestApplyMatchesReferenceLarge(t *testing.T) {
	const n, dim, nq = 3000, 96, 150
	r := rand.New(rand.NewPCG(11, 12))
	for _, par := range []int{1, 2} {
		m := newMemory(t, Config{Dim: dim, Capacity: n, Parallelism: par})
		m.search.blockRows = 16 // several blocks per bucket
		ref := &refMemory{capacity: n}
		var ops []Op
		for i := range n + n/4 { // the first quarter is evicted
			ops = append(ops, storeOp(fmt.Sprint(i), randVector(r, dim), r.Float64(), r.Float64()))
		}
		for i := range nq {
			op := retrieveOp(randVector(r, dim), r.Float64(), 0.15, 1+i%10)
			if i%7 == 0 {
				op.Tolerance = 1
			}
			ops = append(ops, op)
			if i%3 == 0 {
				ops = append(ops, Op{Kind: OpForget, ID: fmt.Sprint(n + i)})
			}
		}
		res := apply(m, ops...)
		for i, op := range ops {
			want := ref.apply(op, n+i) // every vector distinct
			if err := checkResult(op, res[i], want); err != nil {
				t.Fatalf("parallelism %d op %d: %v", par, i, err)
			}
		}
		if err := checkState(m, ref); err != nil {
			t.Fatal(err)
		}
	}
}
