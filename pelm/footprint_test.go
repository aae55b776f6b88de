package pelm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// footprint returns the bytes the memory's buckets allocate for float32 rows
// and for their bfloat16 copies, computed from the slices themselves, and
// checks them against Memory.rowsCap.
func footprint(t *testing.T, m *Memory) (f32, b16 int) {
	t.Helper()
	rows := 0
	for b := range m.buckets {
		bk := &m.buckets[b]
		c := cap(bk.info)
		if cap(bk.rows) != c*m.stride || cap(bk.rows16) != c*m.stride16 {
			t.Fatalf("bucket %d: cap rows %d, rows16 %d for %d rows", b, cap(bk.rows), cap(bk.rows16), c)
		}
		rows += c
		f32 += cap(bk.rows) * 4
		b16 += cap(bk.rows16) * 2
	}
	if rows != m.rowsCap {
		t.Fatalf("rowsCap %d, buckets hold %d", m.rowsCap, rows)
	}
	return f32, b16
}

// TestMemoryFootprint checks the growth policy's bound on a memory filled
// to its capacity, with uniform and wake/sleep phases, then after a churn
// of 2·Capacity stores of new ids: the float32 rows take at most 1.1 × the
// raw Capacity·Dim·4 bytes, and the bfloat16 copies (2 bytes a value, so
// 0.5 × raw before slack) at most 0.55 × raw.
func TestMemoryFootprint(t *testing.T) {
	const dim = 384 // a multiple of 4 and of 32: no padding in either copy
	sizes := []int{20000, 100000}
	if testing.Short() || raceEnabled {
		sizes = sizes[:1]
	}
	phases := []struct {
		name string
		fn   func(*rand.Rand) float64
	}{{"uniform", (*rand.Rand).Float64}, {"wakesleep", wakeSleep}}
	for _, n := range sizes {
		for _, ph := range phases {
			for _, batch := range []int{1, 64, 1024} {
				if batch == 1 && (n > 20000 || raceEnabled) {
					continue // slow; batch 64 behaves alike
				}
				t.Run(fmt.Sprintf("n=%d/%s/churn-batch=%d", n, ph.name, batch), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(n), 9))
					m := newMemory(t, Config{Dim: dim, Capacity: n})
					raw := n * dim * 4 // float32 bytes of the values held
					check := func(stage string) {
						if m.Len() != n {
							t.Fatalf("%s: %d items, want %d", stage, m.Len(), n)
						}
						f32, b16 := footprint(t, m)
						t.Logf("%s: float32 rows %.4f × raw, bfloat16 %.4f × raw (%d rows allocated for %d)",
							stage, float64(f32)/float64(raw), float64(b16)/float64(raw), m.rowsCap, n)
						if 10*f32 > 11*raw {
							t.Errorf("%s: float32 rows take %d bytes, %.4f × the raw %d", stage, f32, float64(f32)/float64(raw), raw)
						}
						if m.stride16 > 0 && 20*b16 > 11*raw {
							t.Errorf("%s: bfloat16 rows take %d bytes, %.4f × the raw float32 %d", stage, b16, float64(b16)/float64(raw), raw)
						}
					}
					fillFast(t, m, n, r, ph.fn)
					check("filled")
					storeBatches(t, m, "churn-", 2*n, batch, r, ph.fn) // new ids: each evicts once m is full
					check("after churn")
				})
			}
		}
	}
}
