package pelm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkRetrieve scores batches of retrieves (k 5, tolerance 0.15,
// uniform phases) against a full memory; q/s counts retrieves per second of
// wall time, cpu-µs/q the process's CPU time per retrieve (the machine may
// be shared; with Parallelism 2, q/s ≤ 2e6 / cpu-µs/q).
func BenchmarkRetrieve(b *testing.B) {
	const n, dim = 20000, 384
	r := rand.New(rand.NewPCG(3, 4))
	m := newMemory(b, Config{Dim: dim, Capacity: n})
	fill(b, m, n, r)
	for _, batch := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("n=%d/dim=%d/batch=%d", n, dim, batch), func(b *testing.B) {
			benchRetrieve(b, m, retrieveBatch(r, dim, batch, 5, 0.15))
		})
	}
}

// wakeSleep draws a phase as the wake/sleep workload does: 0.1 or 0.9,
// equally likely.
func wakeSleep(r *rand.Rand) float64 {
	if r.IntN(2) == 0 {
		return 0.1
	}
	return 0.9
}

// BenchmarkRetrieveWakeSleep is BenchmarkRetrieve with every item's and
// query's phase 0.1 or 0.9: a query's window (tolerance 0.15) holds half of
// the memory, all in one phase bucket.
func BenchmarkRetrieveWakeSleep(b *testing.B) {
	const n, dim = 20000, 384
	r := rand.New(rand.NewPCG(3, 4))
	m := newMemory(b, Config{Dim: dim, Capacity: n})
	fillFast(b, m, n, r, wakeSleep)
	for _, batch := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("n=%d/dim=%d/phases=wakesleep/batch=%d", n, dim, batch), func(b *testing.B) {
			ops := retrieveBatch(r, dim, batch, 5, 0.15)
			for i := range ops {
				ops[i].Phase = wakeSleep(r)
			}
			benchRetrieve(b, m, ops)
		})
	}
}

// BenchmarkRetrieveLarge is BenchmarkRetrieve at the largest capacity:
// 1,000,000 items of dimension 384 (1.5 GB of rows), built once.
func BenchmarkRetrieveLarge(b *testing.B) {
	const n, dim = MaxCapacity, 384
	r := rand.New(rand.NewPCG(3, 4))
	m := newMemory(b, Config{Dim: dim, Capacity: n})
	fillFast(b, m, n, r, (*rand.Rand).Float64)
	for _, batch := range []int{64, 256} {
		b.Run(fmt.Sprintf("n=%d/dim=%d/batch=%d", n, dim, batch), func(b *testing.B) {
			benchRetrieve(b, m, retrieveBatch(r, dim, batch, 5, 0.15))
		})
	}
}

// benchRetrieve applies the batch of retrieves ops to m, b.N times.
func benchRetrieve(b *testing.B, m *Memory, ops []Op) {
	res := make([]Result, len(ops))
	m.Apply(ops, res)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for b.Loop() {
		m.Apply(ops, res)
	}
	b.ReportMetric(float64(b.N*len(ops))/b.Elapsed().Seconds(), "q/s")
	if c := cpuTime() - c0; c > 0 {
		b.ReportMetric(float64(c.Microseconds())/float64(b.N*len(ops)), "cpu-µs/q")
	}
}

// fillFast stores n items with phases drawn by phase and vectors uniform in
// the cube [−1, 1]^dim (cheaper to draw than normal ones, and as good for
// cosine scores), in batches of 1024.
func fillFast(tb testing.TB, m *Memory, n int, r *rand.Rand, phase func(*rand.Rand) float64) {
	tb.Helper()
	storeBatches(tb, m, "item-", n, 1024, r, phase)
}

// storeBatches stores n new ids (prefix and a number) as fillFast does, in
// batches of batch through one reused vector buffer.
func storeBatches(tb testing.TB, m *Memory, prefix string, n, batch int, r *rand.Rand, phase func(*rand.Rand) float64) {
	tb.Helper()
	dim := m.Dim()
	buf := make([]float32, batch*dim)
	ops := make([]Op, 0, batch)
	res := make([]Result, batch)
	for i := range n {
		v := buf[len(ops)*dim : (len(ops)+1)*dim]
		for j := range v {
			v[j] = float32(int32(r.Uint32()))/(1<<31) + 1e-9 // never all zero
		}
		ops = append(ops, storeOp(fmt.Sprint(prefix, i), v, phase(r), 0.5+r.Float64()/2))
		if len(ops) == batch || i == n-1 {
			m.Apply(ops, res)
			ops = ops[:0]
		}
	}
}

// BenchmarkRestore stores n items into an empty memory in batches of 1024,
// as the processor's restore does; items/s counts stores per second.
func BenchmarkRestore(b *testing.B) {
	const n, dim, chunk = 20000, 384, 1024
	r := rand.New(rand.NewPCG(7, 8))
	vecs := make([]float32, n*dim)
	for i := range vecs {
		vecs[i] = float32(r.NormFloat64())
	}
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = storeOp(fmt.Sprint("item-", i), vecs[i*dim:(i+1)*dim], r.Float64(), 0.5+r.Float64()/2)
	}
	res := make([]Result, chunk)
	b.Run(fmt.Sprintf("n=%d/dim=%d/chunk=%d", n, dim, chunk), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := newMemory(b, Config{Dim: dim, Capacity: n})
			for o := 0; o < n; o += chunk {
				m.Apply(ops[o:min(o+chunk, n)], res)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "items/s")
	})
}

// BenchmarkStore stores new ids into a full memory, each evicting the
// oldest; items/s counts stores per second. With ttl, each store carries
// Time t (one tick per store) and Expires t + n, so that from the second
// round each store finds the oldest item expired instead of evicting it:
// the cost of the expiry index.
func BenchmarkStore(b *testing.B) {
	const n, dim = 20000, 384
	for _, c := range []struct {
		batch int
		ttl   bool
	}{{1, false}, {64, false}, {1, true}, {64, true}} {
		batch, ttl := c.batch, c.ttl
		name := fmt.Sprintf("n=%d/dim=%d/batch=%d", n, dim, batch)
		if ttl {
			name += "/ttl"
		}
		b.Run(name, func(b *testing.B) {
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
					if ttl {
						ops[i].Time = int64(next)
						ops[i].Expires = int64(next + n)
					}
					next++
				}
				m.Apply(ops, res)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "items/s")
			if ttl && b.N*batch > 2*n && (res[0].HasEvicted || len(m.Expired()) == 0) {
				b.Fatalf("evicted %q, expired %d: the benchmark does not expire", res[0].Evicted, len(m.Expired()))
			}
		})
	}
}
