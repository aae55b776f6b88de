//go:build !amd64 || purego

package pelm

// cpuKernels reports that only the generic kernel runs in this build.
func cpuKernels() (avx2, avx512 bool) { return false, false }

// cpuBF16 reports that the bfloat16 first pass does not run in this build.
func cpuBF16() bool { return false }

// The assembly kernels do not exist in this build; kernel.available keeps
// them from being chosen.

func dot4AVX512(q, rows, out, max *float32, nrows, stride, ostride int) {
	panic("pelm: no AVX-512 kernel")
}
func dot1AVX512(q, rows, out *float32, nrows, stride int) float32 { panic("pelm: no AVX-512 kernel") }
func dot4BF16(q, rows *uint16, out, max *float32, nrows, stride, ostride int) {
	panic("pelm: no bfloat16 kernel")
}
func prefetch(p *float32, n int)                                 {}
func dot4AVX2(q, rows, out *float32, nrows, stride, ostride int) { panic("pelm: no AVX2 kernel") }
func dot1AVX2(q, rows, out *float32, nrows, stride int)          { panic("pelm: no AVX2 kernel") }
