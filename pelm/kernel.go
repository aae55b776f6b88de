package pelm

import "math"

// The scoring kernel: dot products of a few queries against a block of rows,
// written to a small tile that the top-k scan reads while it is in L1.
//
// Every implementation computes the score of a query q and a row r (both
// stride floats, zero padded) the same way whatever the call: the same lanes,
// the same order of accumulation, the same final reduction. A score thus
// depends only on the two vectors and on the kernel, never on how many
// queries or rows a call covers, the tiling, the bucket or the goroutine.
//
//   - kernelAVX512: 16 float32 lanes; lane l accumulates q[i]·r[i] for
//     i ≡ l (mod 16), i ascending, each step one fused multiply-add (one
//     rounding); a tail of 4, 8 or 12 floats is loaded under a mask as
//     zeros elsewhere. The lanes are then summed pairwise:
//     aᵢ = lᵢ + lᵢ₊₈, bᵢ = aᵢ + aᵢ₊₄, cᵢ = bᵢ + bᵢ₊₂, score = c₀ + c₁.
//   - kernelAVX2: the same with 8 lanes (a tail of 4 floats) and the
//     reduction bᵢ = lᵢ + lᵢ₊₄, cᵢ = bᵢ + bᵢ₊₂, score = c₀ + c₁.
//   - kernelGeneric (pure Go, every platform): 4 lanes, lane l accumulating
//     float32(q[i]·r[i]) (product and sum each rounded) for i ≡ l (mod 4),
//     then score = (l₀ + l₂) + (l₁ + l₃).
//
// The implementations differ from one another only by float32 rounding
// (relative error about 1e−7·√Dim each).

// kernel selects an implementation of the scoring kernel.
type kernel uint8

const (
	kernelGeneric kernel = iota // pure Go
	kernelAVX2                  // amd64 AVX2 + FMA
	kernelAVX512                // amd64 AVX-512 F + VL
)

// String names the kernel (for test names).
func (k kernel) String() string {
	switch k {
	case kernelAVX2:
		return "avx2"
	case kernelAVX512:
		return "avx512"
	}
	return "generic"
}

// groupQueries is the number of queries dot4 scores in one pass over rows.
const groupQueries = 4

// bestKernel returns the fastest kernel this CPU runs.
func bestKernel() kernel {
	avx2, avx512 := cpuKernels()
	switch {
	case avx512:
		return kernelAVX512
	case avx2:
		return kernelAVX2
	}
	return kernelGeneric
}

// available reports whether this CPU (and build) runs kernel k.
func (k kernel) available() bool {
	avx2, avx512 := cpuKernels()
	switch k {
	case kernelAVX2:
		return avx2
	case kernelAVX512:
		return avx512
	}
	return true
}

// dot4 writes out[j*ostride+r] = score(q_j, row_r) for the four queries
// q_j = q[j*stride:(j+1)*stride] and the nrows rows row_r =
// rows[r*stride:(r+1)*stride], nrows ≥ 1, and mx[j] = max_r out[j*ostride+r].
// stride is a multiple of 4.
func (k kernel) dot4(q, rows, out []float32, mx *[groupQueries]float32, nrows, stride, ostride int) {
	_ = q[groupQueries*stride-1]
	_ = rows[nrows*stride-1]
	_ = out[(groupQueries-1)*ostride+nrows-1]
	switch {
	case k == kernelAVX512 && nrows >= 4:
		dot4AVX512(&q[0], &rows[0], &out[0], &mx[0], nrows, stride, ostride)
	case k == kernelAVX512:
		for j := range groupQueries {
			mx[j] = dot1AVX512(&q[j*stride], &rows[0], &out[j*ostride], nrows, stride)
		}
	case k == kernelAVX2:
		dot4AVX2(&q[0], &rows[0], &out[0], nrows, stride, ostride)
		for j := range groupQueries {
			mx[j] = maxOf(out[j*ostride : j*ostride+nrows])
		}
	default:
		dot4Generic(q, rows, out, mx, nrows, stride, ostride)
	}
}

// dot1 writes out[r] = score(q, row_r) for the query q = q[:stride] and the
// nrows rows of rows, nrows ≥ 1, and returns max_r out[r]; the scores are
// those dot4 gives.
func (k kernel) dot1(q, rows, out []float32, nrows, stride int) float32 {
	_ = q[stride-1]
	_ = rows[nrows*stride-1]
	_ = out[nrows-1]
	switch k {
	case kernelAVX512:
		return dot1AVX512(&q[0], &rows[0], &out[0], nrows, stride)
	case kernelAVX2:
		dot1AVX2(&q[0], &rows[0], &out[0], nrows, stride)
		return maxOf(out[:nrows])
	}
	return dot1Generic(q, rows, out, nrows, stride)
}

func maxOf(s []float32) float32 {
	m := s[0]
	for _, x := range s[1:] {
		m = max(m, x)
	}
	return m
}

// dotGeneric returns the generic kernel's score of a and b (len a multiple
// of 4, len(b) ≥ len(a)).
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var l0, l1, l2, l3 float32
	for i := 0; i+3 < len(a); i += 4 {
		l0 += float32(a[i] * b[i])
		l1 += float32(a[i+1] * b[i+1])
		l2 += float32(a[i+2] * b[i+2])
		l3 += float32(a[i+3] * b[i+3])
	}
	return (l0 + l2) + (l1 + l3)
}

func dot4Generic(q, rows, out []float32, mx *[groupQueries]float32, nrows, stride, ostride int) {
	for j := range groupQueries {
		mx[j] = dot1Generic(q[j*stride:], rows, out[j*ostride:], nrows, stride)
	}
}

func dot1Generic(q, rows, out []float32, nrows, stride int) float32 {
	q = q[:stride]
	out = out[:nrows]
	m := float32(math.Inf(-1))
	for r := range out {
		s := dotGeneric(q, rows[r*stride:(r+1)*stride])
		out[r] = s
		m = max(m, s)
	}
	return m
}

// The bfloat16 first pass. Where the CPU has AVX512_BF16 and Dim ≥
// minDimBF16, every row is also kept rounded to bfloat16 (8 significant
// bits), and the AVX-512 kernel first scores a sub-block against four
// queries (also rounded) with dot4BF16, at twice the speed and half the
// bytes. Only the rows whose approximate score s̃ can reach a query's k-th
// best score kth are rescored exactly, with dot1: by the bound below, a row
// with s̃ < kth − eps16(Dim) has score < kth and cannot enter the top k.
// Results are therefore exactly those of the float32 kernel alone.
const minDimBF16 = 128

// eps16 bounds |s̃ − s| between the first pass's score s̃ and the float32
// kernel's score s of two unit vectors q, r of dimension dim. With A =
// Σ|qᵢrᵢ| ≤ ‖q‖‖r‖ ≤ 1.0001: rounding q and r to bfloat16 (relative error
// 2⁻⁸ each) moves the exact dot product by at most (2·2⁻⁸ + 2⁻¹⁶)·A; the
// first pass's float32 sums (about dim/16 + 5 roundings in a lane's chain
// and the final tree, each of relative error at most 2⁻²³ here, to allow
// for any rounding mode) by at most (dim/16 + 5)·2⁻²³·A; the float32
// kernel's sums (at most dim/4 + 3 roundings in the longest chain) by at
// most (dim/4 + 3)·2⁻²²·A; denormals flushed to zero by at most dim·2⁻¹²⁶.
// The 1e−6 covers the float32 rounding of kth − eps16.
func eps16(dim int) float32 {
	a := 1.0001
	d := float64(dim)
	e := a*(0x1p-7+0x1p-16+(d/16+5)*0x1p-23+(d/4+3)*0x1p-22) + d*0x1p-126 + 1e-6
	return float32(e)
}

// toBF16 writes src rounded to bfloat16 (to nearest, ties to even) into
// dst, and zeros after it. The values are finite.
func toBF16(dst []uint16, src []float32) {
	head := dst[:len(src)]
	for i, x := range src {
		b := math.Float32bits(x)
		head[i] = uint16((b + 0x7fff + (b>>16)&1) >> 16)
	}
	clear(dst[len(src):])
}
