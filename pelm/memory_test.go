package pelm

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"
)

func newMemory(t testing.TB, cfg Config) *Memory {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func storeOp(id string, v []float32, phase, conf float64) Op {
	return Op{Kind: OpStore, ID: id, Vector: v, Phase: phase, Confidence: conf}
}

func retrieveOp(v []float32, phase, tol float64, k int) Op {
	return Op{Kind: OpRetrieve, Vector: v, Phase: phase, Tolerance: tol, TopK: k}
}

// apply runs ops as one batch and returns fresh results.
func apply(m *Memory, ops ...Op) []Result {
	res := make([]Result, len(ops))
	m.Apply(ops, res)
	return res
}

func matchIDs(ms []Match) []string {
	ids := make([]string, len(ms))
	for i, mt := range ms {
		ids[i] = mt.ID
	}
	return ids
}

func itemIDs(m *Memory) []string {
	var ids []string
	m.Items(func(it Item) bool {
		ids = append(ids, it.ID)
		return true
	})
	return ids
}

func TestRetrieveWindowEdges(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 10})
	apply(m,
		storeOp("p0", []float32{1, 0}, 0, 1),
		storeOp("p1", []float32{1, 0.1}, 1, 1),
		storeOp("p.5", []float32{1, 0.2}, 0.5, 0.5),
	)
	q := []float32{3, 0}
	tests := []struct {
		name    string
		phase   float64
		tol     float64
		k       int
		minConf float64
		want    []string
	}{
		{name: "tol 0 at phase 0", phase: 0, tol: 0, k: 5, want: []string{"p0"}},
		{name: "tol 0 at phase 1", phase: 1, tol: 0, k: 5, want: []string{"p1"}},
		{name: "tol 0 between", phase: 0.25, tol: 0, k: 5, want: nil},
		{name: "tol 1 from phase 0 sees all", phase: 0, tol: 1, k: 5, want: []string{"p0", "p1", "p.5"}},
		{name: "tol 1 from phase 1 sees all", phase: 1, tol: 1, k: 5, want: []string{"p0", "p1", "p.5"}},
		{name: "distance equal to tolerance matches", phase: 0.25, tol: 0.25, k: 5, want: []string{"p0", "p.5"}},
		{name: "topK above matches", phase: 0.5, tol: 1, k: 1000, want: []string{"p0", "p1", "p.5"}},
		{name: "topK 1", phase: 0.5, tol: 1, k: 1, want: []string{"p0"}},
		{name: "min confidence is inclusive", phase: 0.5, tol: 1, k: 5, minConf: 0.5, want: []string{"p0", "p1", "p.5"}},
		{name: "min confidence excludes", phase: 0.5, tol: 1, k: 5, minConf: 0.75, want: []string{"p0", "p1"}},
		{name: "negative tolerance matches nothing", phase: 0, tol: -0.1, k: 5, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := retrieveOp(q, tt.phase, tt.tol, tt.k)
			op.MinConfidence = tt.minConf
			res := apply(m, op)
			if got := matchIDs(res[0].Matches); !slices.Equal(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Fatalf("matches %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetrieveScoreIsCosine(t *testing.T) {
	m := newMemory(t, Config{Dim: 3, Capacity: 4})
	apply(m, storeOp("a", []float32{2, 0, 0}, 0.5, 1), storeOp("b", []float32{1, 1, 0}, 0.5, 1), storeOp("c", []float32{-5, 0, 0}, 0.5, 1))
	res := apply(m, retrieveOp([]float32{10, 0, 0}, 0.5, 0, 3))
	want := []struct {
		id    string
		score float64
	}{{"a", 1}, {"b", 1 / math.Sqrt2}, {"c", -1}}
	if len(res[0].Matches) != 3 {
		t.Fatalf("matches %v", res[0].Matches)
	}
	for i, w := range want {
		g := res[0].Matches[i]
		if g.ID != w.id || math.Abs(float64(g.Score)-w.score) > 1e-6 {
			t.Fatalf("match %d = %s %v, want %s %v", i, g.ID, g.Score, w.id, w.score)
		}
	}
}

func TestIdenticalVectorsNewestFirst(t *testing.T) {
	for _, par := range []int{1, 3} {
		t.Run(fmt.Sprint("parallelism ", par), func(t *testing.T) {
			const n = 37
			m := newMemory(t, Config{Dim: 5, Capacity: n, Parallelism: par})
			m.search.blockRows, m.search.parWork = 4, 0 // several blocks, several goroutines
			v := []float32{0.3, -1.7, 2.2, 0.01, 5}
			var ops []Op
			for i := range n + 10 { // the first 10 are evicted
				ops = append(ops, storeOp(fmt.Sprint(i), v, 0.5, 1))
			}
			ops = append(ops, retrieveOp([]float32{1, 2, 3, 4, 5}, 0.5, 0, n))
			res := apply(m, ops...)
			got := res[len(ops)-1].Matches
			if len(got) != n {
				t.Fatalf("%d matches, want %d", len(got), n)
			}
			for i, mt := range got {
				if want := fmt.Sprint(n + 9 - i); mt.ID != want || mt.Score != got[0].Score {
					t.Fatalf("match %d = %s (%v), want %s (%v)", i, mt.ID, mt.Score, want, got[0].Score)
				}
			}
			// Again after compaction moved the rows around.
			res = apply(m, retrieveOp([]float32{1, 2, 3, 4, 5}, 0.5, 0, 3))
			if got := matchIDs(res[0].Matches); !slices.Equal(got, []string{"46", "45", "44"}) {
				t.Fatalf("after compaction: %v", got)
			}
		})
	}
}

func TestStreamOrderWithinBatch(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 2})
	x, y := []float32{1, 0}, []float32{0, 1}
	res := apply(m,
		retrieveOp(x, 0, 1, 5),      // 0: empty memory
		storeOp("a", x, 0, 1),       // 1
		retrieveOp(x, 0, 1, 5),      // 2: sees a
		storeOp("b", y, 0, 1),       // 3
		storeOp("c", x, 0, 1),       // 4: evicts a
		retrieveOp(x, 0, 1, 5),      // 5: c, b
		Op{Kind: OpForget, ID: "c"}, // 6
		Op{Kind: OpForget, ID: "c"}, // 7: absent now
		retrieveOp(x, 0, 1, 5),      // 8: b
		storeOp("b", x, 0, 1),       // 9: upsert, no eviction
		retrieveOp(x, 0, 1, 5),      // 10: b (the new one)
	)
	check := func(i int, want ...string) {
		t.Helper()
		if got := matchIDs(res[i].Matches); !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Errorf("op %d: matches %v, want %v", i, got, want)
		}
	}
	check(0)
	check(2, "a")
	check(5, "c", "b")
	check(8, "b")
	check(10, "b")
	if !res[4].HasEvicted || res[4].Evicted != "a" || res[1].HasEvicted || res[3].HasEvicted {
		t.Errorf("evictions: %+v %+v %+v", res[1], res[3], res[4])
	}
	if !res[6].Found || res[7].Found {
		t.Errorf("found: %v %v", res[6].Found, res[7].Found)
	}
	if !res[9].Replaced || res[9].HasEvicted {
		t.Errorf("upsert: %+v", res[9])
	}
	if res[10].Matches[0].Score < 0.999 {
		t.Errorf("upserted vector not used: %v", res[10].Matches[0].Score)
	}
	if got := itemIDs(m); !slices.Equal(got, []string{"b"}) {
		t.Errorf("items %v", got)
	}
}

func TestCapacityOne(t *testing.T) {
	for _, ev := range []Eviction{FIFO, LowestConfidence} {
		t.Run(ev.String(), func(t *testing.T) {
			m := newMemory(t, Config{Dim: 3, Capacity: 1, Eviction: ev})
			v := []float32{1, 2, 3}
			res := apply(m, storeOp("a", v, 0.5, 1), storeOp("b", v, 0.5, 0.1), retrieveOp(v, 0.5, 1, 10), storeOp("b", v, 0.5, 0.7), storeOp("c", v, 0.5, 0.9))
			if res[0].HasEvicted || res[1].Evicted != "a" || !res[3].Replaced || res[3].HasEvicted || res[4].Evicted != "b" {
				t.Fatalf("results %+v", res)
			}
			if got := matchIDs(res[2].Matches); !slices.Equal(got, []string{"b"}) {
				t.Fatalf("matches %v", got)
			}
			if m.Len() != 1 || !slices.Equal(itemIDs(m), []string{"c"}) {
				t.Fatalf("items %v", itemIDs(m))
			}
		})
	}
}

func TestLowestConfidenceEviction(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 4, Eviction: LowestConfidence})
	v := []float32{1, 1}
	apply(m, storeOp("a", v, 0, 0.5), storeOp("b", v, 0, 0.2), storeOp("c", v, 0, 0.9), storeOp("d", v, 0, 0.2))
	res := apply(m,
		storeOp("e", v, 0, 1),   // evicts b: lowest, older than d
		storeOp("f", v, 0, 1),   // evicts d
		storeOp("a", v, 0, 0.1), // upsert: no eviction, a is now lowest
		storeOp("g", v, 0, 0.1), // evicts a (0.1, older than g)
		storeOp("h", v, 0, 0.3), // evicts g
	)
	var got []string
	for _, r := range res {
		got = append(got, r.Evicted)
	}
	if want := []string{"b", "d", "", "a", "g"}; !slices.Equal(got, want) {
		t.Fatalf("evicted %q, want %q", got, want)
	}
	if want := []string{"c", "e", "f", "h"}; !slices.Equal(itemIDs(m), want) {
		t.Fatalf("items %v, want %v", itemIDs(m), want)
	}
}

func TestItemsInsertionOrder(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 5})
	v := []float32{1, 0}
	apply(m, storeOp("a", v, 0, 1), storeOp("b", v, 0, 1), storeOp("c", v, 0, 1))
	apply(m, storeOp("a", v, 0, 1), Op{Kind: OpForget, ID: "b"}, storeOp("d", v, 0, 1), storeOp("e", v, 0, 1), storeOp("f", v, 0, 1), storeOp("g", v, 0, 1))
	want := []string{"a", "d", "e", "f", "g"} // c evicted by g
	if got := itemIDs(m); !slices.Equal(got, want) {
		t.Fatalf("items %v, want %v", got, want)
	}
	var ranged []string
	for it := range m.Items { // Items is an iter.Seq[Item]
		ranged = append(ranged, it.ID)
	}
	if !slices.Equal(ranged, want) {
		t.Fatalf("range over Items: %v", ranged)
	}
	var orders []uint64
	m.Items(func(it Item) bool {
		orders = append(orders, it.Order)
		return len(orders) < 2 // stops early
	})
	if len(orders) != 2 || orders[0] >= orders[1] {
		t.Fatalf("orders %v", orders)
	}
	it, ok := m.Get("d")
	if !ok || it.ID != "d" || len(it.Vector) != 2 || it.Vector[0] != 1 {
		t.Fatalf("Get(d) = %+v, %v", it, ok)
	}
	if _, ok := m.Get("b"); ok {
		t.Fatal("Get(b) found a forgotten item")
	}
}

func TestGrowsAsItFills(t *testing.T) {
	m := newMemory(t, Config{Dim: 384, Capacity: MaxCapacity})
	v := make([]float32, 384)
	v[0] = 1
	for i := range 10 {
		apply(m, storeOp(fmt.Sprint(i), v, float64(i%3)/2, 1))
	}
	if m.Len() != 10 || len(m.slots) != 10 {
		t.Fatalf("len %d, slots %d", m.Len(), len(m.slots))
	}
	rows, capRows := 0, 0
	for _, bk := range m.buckets {
		rows += len(bk.rows) / m.stride
		capRows += cap(bk.rows) / m.stride
	}
	if rows != 10 || capRows > 32 {
		t.Fatalf("%d rows, capacity %d rows, for 10 items", rows, capRows)
	}
	if cap(m.slots) > 32 || cap(m.ids) > 32 || cap(m.meta) > 32 {
		t.Fatalf("slot capacities %d %d %d", cap(m.slots), cap(m.ids), cap(m.meta))
	}
}

func TestMetaIsCopiedAndStable(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 2})
	buf := []byte("hello")
	v := []float32{1, 0}
	apply(m, Op{Kind: OpStore, ID: "a", Vector: v, Phase: 0, Confidence: 1, Meta: buf}, storeOp("n", v, 0, 1))
	copy(buf, "XXXXX") // the caller reuses its buffer
	res := make([]Result, 1)
	m.Apply([]Op{retrieveOp(v, 0, 0, 2)}, res)
	kept := res[0].Matches // a caller may keep them
	if len(kept) != 2 || string(kept[1].Meta) != "hello" || kept[0].Meta != nil {
		t.Fatalf("matches %+v", kept)
	}
	keptMeta := kept[1].Meta
	// Evict and replace everything; the kept meta must not change.
	for i := range 5 {
		apply(m, Op{Kind: OpStore, ID: fmt.Sprint(i), Vector: v, Confidence: 1, Meta: []byte("other")})
	}
	apply(m, Op{Kind: OpStore, ID: "a", Vector: v, Confidence: 1, Meta: []byte("zzzzz")})
	if string(keptMeta) != "hello" {
		t.Fatalf("kept meta changed to %q", keptMeta)
	}
}

func TestWithVectorsReusesBuffer(t *testing.T) {
	m := newMemory(t, Config{Dim: 3, Capacity: 10})
	apply(m, storeOp("a", []float32{3, 0, 4}, 0, 1), storeOp("b", []float32{0, 1, 0}, 0, 1))
	res := make([]Result, 2)
	ops := []Op{retrieveOp([]float32{3, 0, 4}, 0, 0, 5), retrieveOp([]float32{0, 1, 0}, 0, 0, 5)}
	ops[0].WithVectors = true
	m.Apply(ops, res)
	if got := res[0].Matches[0].Vector; !slices.Equal(got, []float32{0.6, 0, 0.8}) {
		t.Fatalf("vector %v", got)
	}
	if len(res[0].Matches[1].Vector) != 3 || res[1].Matches[0].Vector != nil {
		t.Fatalf("vectors %v / %v", res[0].Matches[1].Vector, res[1].Matches[0].Vector)
	}
	first := &res[0].Matches[0].Vector[0]
	m.Apply(ops, res)
	if &res[0].Matches[0].Vector[0] != first {
		t.Fatal("vector buffer not reused")
	}
	// Appending to one match's vector must not clobber the next one.
	v0 := append(res[0].Matches[0].Vector, 9)
	if v0[3] != 9 || res[0].Matches[1].Vector[0] == 9 {
		t.Fatal("match vectors overlap")
	}
}

func TestResultsAreReset(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 1})
	v := []float32{1, 0}
	res := make([]Result, 2)
	m.Apply([]Op{storeOp("a", v, 0, 1), storeOp("b", v, 0, 1)}, res)
	m.Apply([]Op{Op{Kind: OpForget, ID: "b"}, retrieveOp(v, 0, 1, 1)}, res)
	if res[0].HasEvicted || res[0].Evicted != "" || !res[0].Found || len(res[1].Matches) != 0 || res[1].HasEvicted {
		t.Fatalf("results not reset: %+v", res)
	}
}

func TestApplyPanicsBeforeChanging(t *testing.T) {
	v := []float32{1, 2}
	good := storeOp("ok", v, 0.5, 1)
	tests := []struct {
		name string
		op   Op
	}{
		{"no kind", Op{ID: "x", Vector: v}},
		{"short vector", storeOp("x", []float32{1}, 0, 1)},
		{"long query", retrieveOp([]float32{1, 2, 3}, 0, 0, 1)},
		{"zero vector", storeOp("x", []float32{0, 0}, 0, 1)},
		{"NaN", storeOp("x", []float32{float32(math.NaN()), 1}, 0, 1)},
		{"Inf", retrieveOp([]float32{float32(math.Inf(1)), 1}, 0, 0, 1)},
		{"empty id", storeOp("", v, 0, 1)},
		{"long id", Op{Kind: OpForget, ID: string(bytes.Repeat([]byte("x"), MaxIDLen+1))}},
		{"phase above 1", storeOp("x", v, 1.5, 1)},
		{"negative confidence", storeOp("x", v, 0, -0.1)},
		{"NaN phase", retrieveOp(v, math.NaN(), 0, 1)},
		{"top_k 0", retrieveOp(v, 0, 0, 0)},
		{"top_k too large", retrieveOp(v, 0, 0, MaxTopK+1)},
		{"NaN tolerance", retrieveOp(v, 0, math.NaN(), 1)},
		{"negative expires", Op{Kind: OpStore, ID: "x", Vector: v, Expires: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory(t, Config{Dim: 2, Capacity: 3})
			apply(m, storeOp("a", v, 0.5, 1))
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("no panic")
					}
				}()
				apply(m, good, tt.op)
			}()
			if got := itemIDs(m); !slices.Equal(got, []string{"a"}) {
				t.Fatalf("memory changed: %v", got)
			}
		})
	}
	t.Run("short results", func(t *testing.T) {
		m := newMemory(t, Config{Dim: 2, Capacity: 3})
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		m.Apply([]Op{good, good}, make([]Result, 1))
	})
}

func TestLargeDimensions(t *testing.T) {
	// Long rows take the smallest blocks; dim not a multiple of 4 is padded.
	for _, dim := range []int{MaxDim, 1, 3, 385} {
		t.Run(fmt.Sprint(dim), func(t *testing.T) {
			m := newMemory(t, Config{Dim: dim, Capacity: 50, Parallelism: 2})
			m.search.parWork = 0
			var ops []Op
			for i := range 40 {
				v := make([]float32, dim)
				v[i%dim] = 1
				if dim > 1 {
					v[(i+1)%dim] = float32(i) / 40
				}
				ops = append(ops, storeOp(fmt.Sprint(i), v, 0, 1))
			}
			apply(m, ops...)
			res := apply(m, retrieveOp(ops[7].Vector, 0, 0, 3))
			if len(res[0].Matches) == 0 || res[0].Matches[0].Score < 0.9999 {
				t.Fatalf("matches %+v", res[0].Matches)
			}
			if dim > 1 && res[0].Matches[0].ID != "7" {
				t.Fatalf("best %s", res[0].Matches[0].ID)
			}
		})
	}
}

func TestBucketsShrinkWhenPhasesDrift(t *testing.T) {
	const n = 2000
	m := newMemory(t, Config{Dim: 8, Capacity: n})
	v := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = storeOp(fmt.Sprint(i), v, 0, 1)
	}
	apply(m, ops...)
	if c := cap(m.buckets[0].info); c < n {
		t.Fatalf("bucket 0 capacity %d", c)
	}
	for i := range ops {
		ops[i].Phase = 1 // every item moves to the last bucket
	}
	apply(m, ops...)
	if c := cap(m.buckets[0].info); c > shrinkMinRows || cap(m.buckets[0].rows) > shrinkMinRows*m.stride {
		t.Fatalf("bucket 0 kept capacity %d rows", c)
	}
	if got := len(m.buckets[phaseBuckets-1].info); got != n {
		t.Fatalf("last bucket holds %d", got)
	}
	if err := checkLayout(m); err != nil {
		t.Fatal(err)
	}
	apply(m, ops[:n/2]...) // half of them back to phase 1's bucket: upserts
	ops[0].Phase = 0.5
	apply(m, ops[0])
	if err := checkLayout(m); err != nil {
		t.Fatal(err)
	}
	res := apply(m, retrieveOp(v, 1, 0, 3))
	if got := matchIDs(res[0].Matches); !slices.Equal(got, []string{"999", "998", "997"}) {
		t.Fatalf("matches %v", got)
	}
}
