package pelm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkKernel measures one kernel call over a block of rows, single
// threaded; GMAC/s counts multiply-adds.
func BenchmarkKernel(b *testing.B) {
	const stride, nr = 384, 16
	r := rand.New(rand.NewPCG(1, 2))
	q := randVector(r, 4*stride)
	rows := randVector(r, nr*stride)
	out := make([]float32, 4*nr)
	var mx [groupQueries]float32
	for _, k := range kernels() {
		b.Run(fmt.Sprint(k, "/dot4"), func(b *testing.B) {
			for b.Loop() {
				k.dot4(q, rows, out, &mx, nr, stride, nr)
			}
			b.ReportMetric(float64(b.N)*4*nr*stride/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
		b.Run(fmt.Sprint(k, "/dot1"), func(b *testing.B) {
			for b.Loop() {
				k.dot1(q, rows, out, nr, stride)
			}
			b.ReportMetric(float64(b.N)*nr*stride/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// BenchmarkKernelL1 runs dot4 on 4 queries × 4 rows held in L1: the loop's
// own speed.
func BenchmarkKernelL1(b *testing.B) {
	const stride, nr = 1024, 4
	r := rand.New(rand.NewPCG(1, 2))
	q := randVector(r, 4*stride)
	rows := randVector(r, nr*stride)
	out := make([]float32, 4*nr)
	var mx [groupQueries]float32
	for _, k := range kernels() {
		if k == kernelGeneric {
			continue
		}
		b.Run(fmt.Sprint(k), func(b *testing.B) {
			for b.Loop() {
				k.dot4(q, rows, out, &mx, nr, stride, nr)
			}
			b.ReportMetric(float64(b.N)*4*nr*stride/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// BenchmarkKernelBF16 measures the bfloat16 first pass as BenchmarkKernel
// and BenchmarkKernelL1 do the float32 kernels.
func BenchmarkKernelBF16(b *testing.B) {
	if !cpuBF16() {
		b.Skip("no AVX512_BF16")
	}
	for _, c := range []struct{ stride, nr int }{{384, 16}, {384, 128}, {1024, 4}} {
		r := rand.New(rand.NewPCG(1, 2))
		q := make([]uint16, 4*c.stride)
		rows := make([]uint16, c.nr*c.stride)
		toBF16(q, randVector(r, 4*c.stride))
		toBF16(rows, randVector(r, c.nr*c.stride))
		out := make([]float32, 4*c.nr)
		var mx [groupQueries]float32
		b.Run(fmt.Sprintf("stride=%d/rows=%d", c.stride, c.nr), func(b *testing.B) {
			for b.Loop() {
				dot4BF16(&q[0], &rows[0], &out[0], &mx[0], c.nr, c.stride, c.nr)
			}
			b.ReportMetric(float64(b.N)*4*float64(c.nr*c.stride)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
