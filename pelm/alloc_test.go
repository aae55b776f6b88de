package pelm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// fill stores n random items with uniform phases into m.
func fill(tb testing.TB, m *Memory, n int, r *rand.Rand) {
	tb.Helper()
	const chunk = 1024
	ops := make([]Op, 0, chunk)
	res := make([]Result, chunk)
	for i := range n {
		ops = append(ops, storeOp(fmt.Sprint("item-", i), randVector(r, m.Dim()), r.Float64(), 0.5+r.Float64()/2))
		if len(ops) == chunk || i == n-1 {
			m.Apply(ops, res)
			ops = ops[:0]
		}
	}
}

func randVector(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func retrieveBatch(r *rand.Rand, dim, n, k int, tol float64) []Op {
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = retrieveOp(randVector(r, dim), r.Float64(), tol, k)
	}
	return ops
}

func TestApplyAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ dim, par int }{{64, 1}, {64, 2}, {384, 2}} { // 384: with the bfloat16 first pass, where the CPU has it
		dim, par := c.dim, c.par
		t.Run(fmt.Sprintf("dim %d parallelism %d", dim, par), func(t *testing.T) {
			m := newMemory(t, Config{Dim: dim, Capacity: 3000, Parallelism: par})
			m.search.parWork = 0 // every batch on par goroutines
			fill(t, m, 3000, r)

			retrieves := retrieveBatch(r, dim, 16, 5, 0.15)
			retrieves[3].WithVectors = true
			retrieves[5].TopK = 50
			res := make([]Result, len(retrieves))
			m.Apply(retrieves, res) // warm up
			if a := testing.AllocsPerRun(50, func() { m.Apply(retrieves, res) }); a != 0 {
				t.Errorf("retrieve batch: %v allocs per Apply", a)
			}

			// Stores into a full memory (evictions), upserts, forgets and
			// retrieves mixed; the ids are the caller's strings.
			ids := make([]string, 8000)
			for i := range ids {
				ids[i] = fmt.Sprint("new-", i)
			}
			// Half the stores expire 5 ops after they are stored, within
			// the batch or in the next one; Expire advances the clock
			// between batches.
			mixed := make([]Op, 0, 24)
			mixRes := make([]Result, 24)
			next := 0
			var now int64
			batch := func() {
				mixed = mixed[:0]
				for j := range 8 {
					v := retrieves[j].Vector
					now++
					st := storeOp(ids[next%len(ids)], v, 0.5, 1)
					st.Time = now
					if j%2 == 0 {
						st.Expires = now + 5
					}
					q := retrieves[j]
					q.Time = now
					mixed = append(mixed, st, q)
					if j%4 == 0 {
						mixed = append(mixed, storeOp(ids[next%len(ids)], v, 0.25, 0.9)) // upsert
					}
					next++
				}
				if next%3 == 0 {
					m.Expire(now + 1)
				}
				mixed = append(mixed, Op{Kind: OpForget, ID: "absent"})
				m.Apply(mixed, mixRes)
			}
			for range 20 {
				batch()
			}
			if a := testing.AllocsPerRun(100, batch); a != 0 {
				t.Errorf("mixed batch: %v allocs per Apply", a)
			}
			if len(m.heaps[expHeap]) == 0 {
				t.Error("no item with an expiry left: the batch does not exercise expiry")
			}
		})
	}
}
