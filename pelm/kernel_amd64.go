//go:build amd64 && !purego

package pelm

import "golang.org/x/sys/cpu"

// cpuKernels reports whether the AVX2 (with FMA) and the AVX-512 (F and VL)
// kernels run here. x/sys/cpu checks that the OS saves the wide registers.
func cpuKernels() (avx2, avx512 bool) {
	avx2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	avx512 = avx2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL
	return avx2, avx512
}

// cpuBF16 reports whether the bfloat16 first pass (dot4BF16) runs here.
func cpuBF16() bool {
	_, avx512 := cpuKernels()
	return avx512 && cpu.X86.HasAVX512BF16
}

// The assembly kernels (kernel_amd64.s); see kernel.dot4 and kernel.dot1
// for the contract. Each call covers at most a block of rows, a few
// microseconds of work, so it never holds up the scheduler or the GC.

//go:noescape
func dot4AVX512(q, rows, out, max *float32, nrows, stride, ostride int)

//go:noescape
func dot1AVX512(q, rows, out *float32, nrows, stride int) (max float32)

// prefetch asks for the n > 0 bytes from p to be brought into the cache.
//
//go:noescape
func prefetch(p *float32, n int)

//go:noescape
func dot4BF16(q, rows *uint16, out, max *float32, nrows, stride, ostride int)

//go:noescape
func dot4AVX2(q, rows, out *float32, nrows, stride, ostride int)

//go:noescape
func dot1AVX2(q, rows, out *float32, nrows, stride int)
