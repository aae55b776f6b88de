package pelm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestBytesAtCapacity fills memories to their capacity (new ids of about 10
// bytes, metas of 32 bytes), then churns Capacity more new ids through
// them, and compares the growth of the live heap (HeapAlloc after a
// collection; the ids' strings are allocated by the test and retained by
// the memory) with Config.BytesAtCapacity plus the lengths of the ids and
// metas held, which must be at least the measure and at most 1.15 times it,
// plus, for small capacities, the growth policy's 64·16 spare rows (the
// bound allows them: a memory whose phases drift can hold them), and with
// Memory.Bytes, which must be within 3% of the measure.
func TestBytesAtCapacity(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory is not in HeapAlloc but its allocations differ")
	}
	cases := []struct {
		dim, n int
		ev     Eviction
	}{
		{384, 20000, FIFO},
		{1536, 20000, FIFO},
		{384, 20000, LowestConfidence},
		{384, 5000, FIFO},
		{1536, 2000, FIFO},
	}
	if testing.Short() {
		cases = cases[3:]
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("dim=%d/n=%d/%s", c.dim, c.n, c.ev), func(t *testing.T) {
			cfg := Config{Dim: c.dim, Capacity: c.n, Eviction: c.ev, Parallelism: 1}
			r := rand.New(rand.NewPCG(uint64(c.n), uint64(c.dim)))
			meta := make([]byte, 32)
			h0 := heapAlloc()
			m := newMemory(t, cfg)
			check := func(stage string) {
				measured := heapAlloc() - h0
				var idMeta int64
				for it := range m.Items {
					idMeta += int64(len(it.ID) + len(it.Meta))
				}
				est := cfg.BytesAtCapacity() + idMeta
				got := m.Bytes()
				t.Logf("%s: measured %d B (%.0f B/item), BytesAtCapacity+ids/metas %d (%.3f ×), Bytes %d (%.3f ×)",
					stage, measured, float64(measured)/float64(c.n), est, float64(est)/float64(measured), got, float64(got)/float64(measured))
				stride, stride16 := strides(c.dim)
				floor := phaseBuckets * trimMinRows * rowBytes(stride, stride16)
				if est < measured || float64(est) > 1.15*float64(measured)+float64(floor) {
					t.Errorf("%s: estimate %d, measured %d: want within [1, 1.15] × + %d", stage, est, measured, floor)
				}
				if got < measured*97/100 || got > est {
					t.Errorf("%s: Bytes %d, measured %d, estimate %d", stage, got, measured, est)
				}
			}
			storeMeta(t, m, "item-", c.n, 1024, r, meta)
			check("filled")
			storeMeta(t, m, "churn-", c.n, 256, r, meta)
			check("after churn")
			runtime.KeepAlive(m)
		})
	}
}

// storeMeta stores n new ids with uniform phases and a meta, as
// storeBatches does.
func storeMeta(tb testing.TB, m *Memory, prefix string, n, batch int, r *rand.Rand, meta []byte) {
	tb.Helper()
	dim := m.Dim()
	buf := make([]float32, batch*dim)
	ops := make([]Op, 0, batch)
	res := make([]Result, batch)
	for i := range n {
		v := buf[len(ops)*dim : (len(ops)+1)*dim]
		for j := range v {
			v[j] = float32(int32(r.Uint32()))/(1<<31) + 1e-9
		}
		op := storeOp(fmt.Sprint(prefix, i), v, r.Float64(), 0.5+r.Float64()/2)
		op.Meta = meta
		ops = append(ops, op)
		if len(ops) == batch || i == n-1 {
			m.Apply(ops, res)
			ops = ops[:0]
		}
	}
}
