package pelm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// kernels returns the kernels this CPU and build run, the generic one first.
func kernels() []kernel {
	var ks []kernel
	for _, k := range []kernel{kernelGeneric, kernelAVX2, kernelAVX512} {
		if k.available() {
			ks = append(ks, k)
		}
	}
	return ks
}

func TestBestKernelIsAvailable(t *testing.T) {
	k := bestKernel()
	if !k.available() {
		t.Fatalf("best kernel %v not available", k)
	}
	avx2, avx512 := cpuKernels()
	t.Logf("kernels: %v (avx2 %v, avx512 %v), best %v", kernels(), avx2, avx512, k)
	if m := newMemory(t, Config{Dim: 8}); m.search.kern != k {
		t.Fatalf("New chose %v, want %v", m.search.kern, k)
	}
}

// testDims are the dimensions every randomised test covers, around the
// vector widths (4, 8, 16 floats) and the limits, besides random ones.
var testDims = []int{1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 20, 24, 28, 31, 33, 63, 64, 65, 100, 383, 384, 385, 1000, 1023, 4093, MaxDim}

// randomDim returns a test dimension: one of testDims or uniform in
// [1, MaxDim].
func randomDim(r *rand.Rand) int {
	if r.IntN(2) == 0 {
		return testDims[r.IntN(len(testDims))]
	}
	return 1 + r.IntN(MaxDim)
}

// padded returns n vectors of dim values uniform in [−1, 1] laid out with
// stride, zero padded, followed by one stride of NaN that a kernel must
// never read.
func padded(r *rand.Rand, n, dim, stride int) []float32 {
	v := make([]float32, (n+1)*stride)
	for i := range n {
		for j := range dim {
			v[i*stride+j] = float32(r.Float64()*2 - 1)
		}
	}
	for j := n * stride; j < len(v); j++ {
		v[j] = float32(math.NaN())
	}
	return v
}

// dot64 returns a·b and Σ|aᵢbᵢ| in float64.
func dot64(a, b []float32) (dot, abs float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		dot += p
		abs += math.Abs(p)
	}
	return dot, abs
}

// TestKernelDot checks every kernel's dot4 and dot1 against float64 on
// random dimensions and row counts: the error bound of a float32 sum, no
// read past the rows or the queries, dot1 and dot4 equal to the bit, each
// score independent of its position in the block, and the maxima exact.
func TestKernelDot(t *testing.T) {
	for _, k := range kernels() {
		t.Run(k.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(k)+1, 77))
			trials := 300
			if testing.Short() || raceEnabled {
				trials = 60
			}
			for trial := range trials {
				dim := randomDim(r)
				stride := (dim + 3) &^ 3
				nrows := 1 + r.IntN(37)
				q := padded(r, groupQueries, dim, stride)
				rows := padded(r, nrows, dim, stride)
				ostride := nrows + r.IntN(3)
				out := make([]float32, groupQueries*ostride)
				var mx [groupQueries]float32
				k.dot4(q[:groupQueries*stride], rows[:nrows*stride], out, &mx, nrows, stride, ostride)
				one := make([]float32, nrows)
				for j := range groupQueries {
					qj := q[j*stride : (j+1)*stride]
					m1 := k.dot1(qj, rows[:nrows*stride], one, nrows, stride)
					best := float32(math.Inf(-1))
					for i := range nrows {
						row := rows[i*stride : (i+1)*stride]
						got := out[j*ostride+i]
						want, abs := dot64(qj[:dim], row[:dim])
						bound := float64(dim/4+8) * 0x1p-23 * abs
						if math.IsNaN(float64(got)) || math.Abs(float64(got)-want) > bound {
							t.Fatalf("trial %d dim %d rows %d: dot4 q%d row %d = %v, want %v ± %g", trial, dim, nrows, j, i, got, want, bound)
						}
						if math.Float32bits(one[i]) != math.Float32bits(got) {
							t.Fatalf("trial %d dim %d: dot1 q%d row %d = %v, dot4 %v", trial, dim, j, i, one[i], got)
						}
						var alone [1]float32
						k.dot1(qj, row, alone[:], 1, stride)
						if math.Float32bits(alone[0]) != math.Float32bits(got) {
							t.Fatalf("trial %d dim %d: q%d row %d alone %v, in a block %v", trial, dim, j, i, alone[0], got)
						}
						best = max(best, got)
					}
					if mx[j] != best || m1 != best {
						t.Fatalf("trial %d dim %d rows %d: max q%d: dot4 %v, dot1 %v, want %v", trial, dim, nrows, j, mx[j], m1, best)
					}
				}
			}
		})
	}
}

// kernelEps bounds the float32 error of a score of unit vectors of
// dimension dim, and is the distance under which two reference scores count
// as a possible tie.
func kernelEps(dim int) float64 {
	return scoreEps + float64(dim/4+8)*0x1p-23
}

// runKernelSeed drives a Memory scoring with kernel k, one scoring with the
// generic kernel and the float64 reference through the same random batches
// (stores, forgets and retrieves mixed, phases and tolerances often 0, 1 or
// on a binary grid, a third of the vectors shared), and returns the first
// disagreement. With dups every vector is one of two.
func runKernelSeed(seed uint64, k kernel, dups bool) error {
	r := rand.New(rand.NewPCG(seed, 0x6b65726e656c))
	dim := randomDim(r)
	maxCap := max(1, min(400, 200_000/dim))
	capacity := 1 + r.IntN(maxCap)
	cfg := Config{Dim: dim, Capacity: capacity, Eviction: Eviction(r.IntN(2)), Parallelism: 1 + r.IntN(3)}
	// Kernel k (with the bfloat16 first pass if it applies), generic, and
	// kernel k without the first pass, which must give the same bits.
	var mems [3]*Memory
	for i := range mems {
		m, err := New(cfg)
		if err != nil {
			return err
		}
		mems[i] = m
	}
	mems[0].search.kern, mems[1].search.kern, mems[2].search.kern = k, kernelGeneric, k
	mems[2].search.bf16 = false
	switch r.IntN(3) {
	case 0: // small units and kernel calls, every batch parallel
		blockRows := 1 + r.IntN(12)
		for _, m := range mems {
			m.search.blockRows = blockRows
			m.search.subRows = 1 + r.IntN(blockRows)
			m.search.parWork = 0
		}
	case 1:
		for _, m := range mems {
			m.search.parWork = 0
		}
	}
	ref := &refMemory{capacity: capacity, eviction: cfg.Eviction}
	g := newGen(seed, dim, capacity)
	if dups {
		g.pool = g.pool[:2]
	}
	eps := kernelEps(dim)
	var res [3][]Result
	for b := range 12 {
		n := 1 + r.IntN(40)
		heavy := b == 7
		if heavy {
			n = 100 + r.IntN(100)
		}
		ops, keys := g.batch(n, heavy)
		for i := range ops {
			op := &ops[i]
			if dups && op.Vector != nil {
				keys[i] = r.IntN(2)
				op.Vector = g.pool[keys[i]]
			}
			if op.Kind == OpRetrieve && r.IntN(5) == 0 {
				op.TopK = 1 + r.IntN(100)
			}
		}
		for i, m := range mems {
			if len(res[i]) < n {
				res[i] = append(res[i], make([]Result, n-len(res[i]))...)
			}
			m.Apply(ops, res[i])
		}
		for i, op := range ops {
			want := ref.apply(op, keys[i])
			for j := range mems {
				if err := checkResult(op, res[j][i], want); op.Kind != OpRetrieve && err != nil {
					return fmt.Errorf("cfg %+v kernel %v batch %d op %d: %w", cfg, mems[j].search.kern, b, i, err)
				}
				if op.Kind == OpRetrieve {
					if err := checkMatchesEps(op, res[j][i].Matches, want.cands, eps); err != nil {
						return fmt.Errorf("cfg %+v kernel %v batch %d op %d (retrieve phase %v tol %v k %d): %w",
							cfg, mems[j].search.kern, b, i, op.Phase, op.Tolerance, op.TopK, err)
					}
				}
			}
			if op.Kind == OpRetrieve {
				if err := sameUpToTies(res[0][i].Matches, res[1][i].Matches, want.cands, eps); err != nil {
					return fmt.Errorf("cfg %+v batch %d op %d: kernel %v vs generic: %w", cfg, b, i, k, err)
				}
				if err := sameExactly(res[0][i].Matches, res[2][i].Matches); err != nil {
					return fmt.Errorf("cfg %+v batch %d op %d: kernel %v with first pass %v vs without: %w",
						cfg, b, i, k, mems[0].search.firstPass(), err)
				}
			}
		}
		if err := checkState(mems[0], ref); err != nil {
			return fmt.Errorf("cfg %+v after batch %d: %w", cfg, b, err)
		}
	}
	return nil
}

// sameUpToTies checks that two retrieves returned the same ids in the same
// order, except at positions whose reference score is within eps of a
// candidate with another vector (float rounding may order those either
// way).
func sameUpToTies(a, b []Match, cands []refCand, eps float64) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d matches vs %d", len(a), len(b))
	}
	byID := map[string]refCand{}
	for _, c := range cands {
		byID[c.id] = c
	}
	for j := range a {
		if a[j].ID == b[j].ID {
			continue
		}
		ca, cb := byID[a[j].ID], byID[b[j].ID]
		if ca.key == cb.key || math.Abs(ca.score-cb.score) > eps {
			return fmt.Errorf("match %d: %q (score %v) vs %q (score %v)", j, a[j].ID, ca.score, b[j].ID, cb.score)
		}
	}
	return nil
}

// sameExactly checks that two retrieves returned the same ids with the same
// scores, to the bit, in the same order.
func sameExactly(a, b []Match) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d matches vs %d", len(a), len(b))
	}
	for j := range a {
		if a[j].ID != b[j].ID || math.Float32bits(a[j].Score) != math.Float32bits(b[j].Score) {
			return fmt.Errorf("match %d: %q %v vs %q %v", j, a[j].ID, a[j].Score, b[j].ID, b[j].Score)
		}
	}
	return nil
}

// TestRetrieveKernels checks each kernel (forced, whatever the CPU would
// choose) against the generic kernel and the float64 reference on random
// memories: dimensions 1 to MaxDim, sizes, tolerances, top k, mixed batches,
// phases 0 and 1, parallelism and blocking.
func TestRetrieveKernels(t *testing.T) {
	seeds := 40
	if testing.Short() || raceEnabled {
		seeds = 8
	}
	for _, k := range kernels() {
		t.Run(k.String(), func(t *testing.T) {
			for seed := range uint64(seeds) {
				if err := runKernelSeed(seed, k, false); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

// TestRetrieveKernelsDuplicates runs the same with every vector one of two:
// identical vectors must score exactly alike and come newest first.
func TestRetrieveKernelsDuplicates(t *testing.T) {
	seeds := 20
	if testing.Short() || raceEnabled {
		seeds = 5
	}
	for _, k := range kernels() {
		t.Run(k.String(), func(t *testing.T) {
			for seed := range uint64(seeds) {
				if err := runKernelSeed(1000+seed, k, true); err != nil {
					t.Fatalf("seed %d: %v", 1000+seed, err)
				}
			}
		})
	}
}

// TestRetrieveDuplicatesFull fills a memory of realistic dimension with one
// vector at phases 0, 1 and between, and checks that every retrieve returns
// the newest matching items, all with the same score.
func TestRetrieveDuplicatesFull(t *testing.T) {
	const n, dim = 700, 384
	r := rand.New(rand.NewPCG(9, 9))
	v := randVector(r, dim)
	for _, k := range kernels() {
		t.Run(k.String(), func(t *testing.T) {
			m := newMemory(t, Config{Dim: dim, Capacity: n, Parallelism: 2})
			m.search.kern = k
			m.search.parWork = 0
			ref := &refMemory{capacity: n}
			var ops []Op
			for i := range n + 100 { // the first 100 are evicted
				ops = append(ops, storeOp(fmt.Sprint(i), v, []float64{0, 1, 0.5, r.Float64()}[i%4], 1))
			}
			for i := range 64 {
				q := v
				if i%2 == 1 {
					q = randVector(r, dim)
				}
				ops = append(ops, retrieveOp(q, []float64{0, 1, 0.5, r.Float64()}[i%4], []float64{0, 0.5, 1, 0.15}[i/4%4], 1+i%13))
			}
			res := apply(m, ops...)
			for i, op := range ops {
				want := ref.apply(op, 0)
				if err := checkResult(op, res[i], want); err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
				for j, mt := range res[i].Matches {
					if mt.Score != res[i].Matches[0].Score {
						t.Fatalf("op %d match %d: score %v, first %v", i, j, mt.Score, res[i].Matches[0].Score)
					}
				}
			}
		})
	}
}

// TestKernelBF16 checks the first pass against the float32 kernel it
// filters for: on random unit vectors (and spiky ones, whose mass sits in
// a few values) of dimensions 128 to MaxDim, every approximate score is
// within eps16 of the exact one, and the maxima are exact.
func TestKernelBF16(t *testing.T) {
	if !cpuBF16() {
		t.Skip("no AVX512_BF16")
	}
	r := rand.New(rand.NewPCG(5, 16))
	trials := 200
	if testing.Short() || raceEnabled {
		trials = 40
	}
	unitRows := func(n, dim, stride int, spiky bool) []float32 {
		v := make([]float32, n*stride)
		for i := range n {
			row := v[i*stride : i*stride+dim]
			for j := range row {
				row[j] = float32(r.NormFloat64())
				if spiky && r.IntN(8) > 0 {
					row[j] *= 1e-3
				}
			}
			nrm := norm(row)
			for j := range row {
				row[j] = float32(float64(row[j]) / nrm)
			}
		}
		return v
	}
	for trial := range trials {
		dim := minDimBF16 + r.IntN(MaxDim-minDimBF16+1)
		if trial%4 == 0 {
			dim = []int{128, 129, 383, 384, 385, 1024, 4095, MaxDim}[trial/4%8]
		}
		stride, stride16 := (dim+3)&^3, (dim+31)&^31
		nrows := 4 + r.IntN(30)
		spiky := trial%3 == 0
		q := unitRows(groupQueries, dim, stride, spiky)
		rows := unitRows(nrows, dim, stride, spiky)
		if trial%5 == 0 { // near-duplicates: scores close to 1
			copy(rows[:dim], q[:dim])
			rows[0] += 1e-3
		}
		q16 := make([]uint16, groupQueries*stride16)
		rows16 := make([]uint16, nrows*stride16)
		for j := range groupQueries {
			toBF16(q16[j*stride16:(j+1)*stride16], q[j*stride:j*stride+dim])
		}
		for i := range nrows {
			toBF16(rows16[i*stride16:(i+1)*stride16], rows[i*stride:i*stride+dim])
		}
		exact := make([]float32, groupQueries*nrows)
		approx := make([]float32, groupQueries*nrows)
		var mx, amx [groupQueries]float32
		kernelAVX512.dot4(q, rows, exact, &mx, nrows, stride, nrows)
		dot4BF16(&q16[0], &rows16[0], &approx[0], &amx[0], nrows, stride16, nrows)
		eps := eps16(dim)
		for j := range groupQueries {
			best := float32(math.Inf(-1))
			for i := range nrows {
				a, e := approx[j*nrows+i], exact[j*nrows+i]
				if !(math.Abs(float64(a-e)) <= float64(eps)) {
					t.Fatalf("trial %d dim %d: q%d row %d: first pass %v, exact %v, bound %v", trial, dim, j, i, a, e, eps)
				}
				best = max(best, a)
			}
			if amx[j] != best {
				t.Fatalf("trial %d dim %d: max q%d %v, want %v", trial, dim, j, amx[j], best)
			}
		}
	}
}

func TestToBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 16))
	for range 100000 {
		x := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(40)-20)))
		if r.IntN(4) == 0 { // a tie: the 16 low bits exactly half
			x = math.Float32frombits(math.Float32bits(x)&^0xffff | 0x8000)
		}
		var got [1]uint16
		toBF16(got[:], []float32{x})
		// Round to 8 significant bits in float64, ties to even.
		fr, exp := math.Frexp(float64(x))
		want := float32(math.Ldexp(math.RoundToEven(fr*256), exp-8))
		if g := math.Float32frombits(uint32(got[0]) << 16); g != want {
			t.Fatalf("toBF16(%v) = %v, want %v", x, g, want)
		}
	}
	dst := []uint16{1, 2, 3, 4}
	toBF16(dst, []float32{1})
	if !slices.Equal(dst, []uint16{0x3f80, 0, 0, 0}) { // 1.0, then the padding zeroed
		t.Fatalf("toBF16 into 4 from one value: %#x", dst)
	}
}
