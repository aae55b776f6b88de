package pelm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkRetrieve scores batches of retrieves (k 5, tolerance 0.15,
// uniform phases) against a full memory; q/s counts retrieves per second.
func BenchmarkRetrieve(b *testing.B) {
	const n, dim = 20000, 384
	r := rand.New(rand.NewPCG(3, 4))
	m := newMemory(b, Config{Dim: dim, Capacity: n})
	fill(b, m, n, r)
	for _, batch := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("n=%d/dim=%d/batch=%d", n, dim, batch), func(b *testing.B) {
			ops := retrieveBatch(r, dim, batch, 5, 0.15)
			res := make([]Result, batch)
			m.Apply(ops, res)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m.Apply(ops, res)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "q/s")
		})
	}
}

// BenchmarkStore stores new ids into a full memory, each evicting the
// oldest; items/s counts stores per second.
func BenchmarkStore(b *testing.B) {
	const n, dim = 20000, 384
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("n=%d/dim=%d/batch=%d", n, dim, batch), func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 6))
			m := newMemory(b, Config{Dim: dim, Capacity: n})
			fill(b, m, n, r)
			ids := make([]string, 2*n) // cycled: an id is long evicted when it comes back
			for i := range ids {
				ids[i] = fmt.Sprint("new-", i)
			}
			vecs := make([][]float32, 256)
			for i := range vecs {
				vecs[i] = randVector(r, dim)
			}
			ops := make([]Op, batch)
			res := make([]Result, batch)
			next := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i := range ops {
					ops[i] = storeOp(ids[next%len(ids)], vecs[next%len(vecs)], float64(next%1000)/1000, 1)
					next++
				}
				m.Apply(ops, res)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
