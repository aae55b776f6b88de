package pelm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// storeAt is a store at stream time t that expires at exp (0: never).
func storeAt(id string, v []float32, t, exp int64) Op {
	op := storeOp(id, v, 0.5, 1)
	op.Time, op.Expires = t, exp
	return op
}

// retrieveAt is a retrieve at stream time t seeing every phase.
func retrieveAt(v []float32, t int64) Op {
	op := retrieveOp(v, 0.5, 1, 10)
	op.Time = t
	return op
}

func TestExpiryBeforeEviction(t *testing.T) {
	v := []float32{1, 1}
	for _, ev := range []Eviction{FIFO, LowestConfidence} {
		t.Run(ev.String(), func(t *testing.T) {
			m := newMemory(t, Config{Dim: 2, Capacity: 3, Eviction: ev})
			a := storeAt("a", v, 1, 0)
			a.Confidence = 0.2 // the victim of either policy, were nothing expired
			b := storeAt("b", v, 2, 10)
			b.Confidence = 0.9
			c := storeAt("c", v, 3, 0)
			apply(m, a, b, c)
			// d arrives full at time 10: b expires first, nothing is evicted.
			res := apply(m, storeAt("d", v, 10, 0), storeAt("e", v, 11, 0))
			if res[0].HasEvicted || res[0].Evicted != "" {
				t.Fatalf("d evicted %q", res[0].Evicted)
			}
			if !res[1].HasEvicted || res[1].Evicted != "a" {
				t.Fatalf("e evicted %q, want a", res[1].Evicted)
			}
			if got := m.Expired(); !slices.Equal(got, []string{"b"}) {
				t.Fatalf("expired %q", got)
			}
			if got := itemIDs(m); !slices.Equal(got, []string{"c", "d", "e"}) || m.Len() != 3 {
				t.Fatalf("items %v, len %d", got, m.Len())
			}
		})
	}
}

func TestExpiryWithinBatch(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 10})
	x, y := []float32{1, 0}, []float32{0, 1}
	res := apply(m,
		storeAt("a", x, 1, 5),                // 0
		storeAt("b", y, 2, 5),                // 1: expires with a, after it (newer)
		retrieveAt(x, 4),                     // 2: sees a, b
		storeAt("c", x, 4, 0),                // 3
		retrieveAt(x, 5),                     // 4: a and b expired before it
		retrieveAt(x, 3),                     // 5: the clock stays at 5
		Op{Kind: OpForget, ID: "a", Time: 6}, // 6: already gone
	)
	if got := matchIDs(res[2].Matches); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("before expiry: %v", got)
	}
	if got := matchIDs(res[4].Matches); !slices.Equal(got, []string{"c"}) {
		t.Errorf("at expiry: %v", got)
	}
	if got := matchIDs(res[5].Matches); !slices.Equal(got, []string{"c"}) {
		t.Errorf("stepped back: %v", got)
	}
	if res[6].Found {
		t.Error("forget found an expired item")
	}
	if got := m.Expired(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("expired %q, want a then b", got)
	}
	if m.Len() != 1 || m.Now() != 6 {
		t.Errorf("len %d, now %d", m.Len(), m.Now())
	}
	if _, ok := m.Get("a"); ok {
		t.Error("Get finds an expired item")
	}
	// The next batch starts with an empty Expired.
	apply(m, retrieveAt(x, 7))
	if got := m.Expired(); len(got) != 0 {
		t.Errorf("expired %q after a batch that expired nothing", got)
	}
}

func TestExpiryLen(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 100})
	v := []float32{1, 2}
	var ops []Op
	for i := range 50 {
		ops = append(ops, storeAt(fmt.Sprint(i), v, int64(i), int64(i)+10))
	}
	apply(m, ops...)
	// Within the batch, op i expires the items of Expires ≤ i: 0..39.
	if got := m.Expired(); len(got) != 40 || got[0] != "0" || got[39] != "39" || m.Len() != 10 {
		t.Fatalf("expired %q, len %d", got, m.Len())
	}
	apply(m, retrieveAt(v, 55))
	if m.Len() != 4 || !slices.Equal(itemIDs(m), []string{"46", "47", "48", "49"}) {
		t.Fatalf("len %d, items %v", m.Len(), itemIDs(m))
	}
}

func TestUpsertResetsExpiry(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 10, Eviction: LowestConfidence})
	v := []float32{1, 2}
	res := apply(m,
		storeAt("a", v, 1, 5),
		storeAt("b", v, 1, 0),
		storeAt("a", v, 2, 0), // never expires now
		storeAt("b", v, 3, 7), // expires now
	)
	if !res[2].Replaced || !res[3].Replaced {
		t.Fatal("not replaced")
	}
	if it, _ := m.Get("a"); it.Expires != 0 || it.Time != 2 {
		t.Fatalf("a: time %d expires %d", it.Time, it.Expires)
	}
	if n := m.Expire(6); n != 0 {
		t.Fatalf("Expire(6) removed %q", m.Expired())
	}
	if n := m.Expire(7); n != 1 || !slices.Equal(m.Expired(), []string{"b"}) {
		t.Fatalf("Expire(7): %d %q", n, m.Expired())
	}
	if got := itemIDs(m); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("items %v", got)
	}
	// A forget takes the item out of the expiry index.
	apply(m, storeAt("c", v, 8, 9), Op{Kind: OpForget, ID: "c", Time: 8})
	if n := m.Expire(100); n != 0 || len(m.heaps[expHeap]) != 0 {
		t.Fatalf("Expire after forget: %d %q", n, m.Expired())
	}
}

func TestExpireNow(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 10})
	v := []float32{1, 2}
	apply(m, storeAt("late", v, 1, 30), storeAt("x", v, 1, 20), storeAt("y", v, 2, 20), storeAt("z", v, 3, 10), storeAt("keep", v, 3, 0))
	if n := m.Expire(5); n != 0 || m.Len() != 5 || m.Now() != 5 {
		t.Fatalf("Expire(5): %d, len %d, now %d", n, m.Len(), m.Now())
	}
	// Earliest expiry first; x and y tie, the older first.
	if n := m.Expire(25); n != 3 || !slices.Equal(m.Expired(), []string{"z", "x", "y"}) {
		t.Fatalf("Expire(25): %d %q", n, m.Expired())
	}
	if n := m.Expire(10); n != 0 || m.Now() != 25 || len(m.Expired()) != 0 {
		t.Fatalf("Expire(10) moved the clock back: %d, now %d", n, m.Now())
	}
	if got := itemIDs(m); !slices.Equal(got, []string{"late", "keep"}) || m.Len() != 2 {
		t.Fatalf("items %v", got)
	}
	if err := checkLayout(m); err != nil {
		t.Fatal(err)
	}
}

func TestClockNeverMovesBack(t *testing.T) {
	m := newMemory(t, Config{Dim: 2, Capacity: 2})
	v := []float32{1, 2}
	apply(m, storeAt("a", v, 100, 0), storeAt("old", v, 100, 150))
	// Stream time steps back to 50: the clock stays at 100.
	res := apply(m,
		storeAt("b", v, 50, 60),  // expired on arrival: not stored, nothing evicted
		storeAt("a", v, 50, 90),  // replaces a, then expired on arrival
		storeAt("c", v, 50, 120), // stored, with Time 100
	)
	if res[0].HasEvicted || res[1].HasEvicted || !res[1].Replaced || res[2].HasEvicted {
		t.Fatalf("results %+v", res)
	}
	if got := m.Expired(); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("expired %q", got)
	}
	if m.Now() != 100 || m.Len() != 2 || !slices.Equal(itemIDs(m), []string{"old", "c"}) {
		t.Fatalf("now %d, items %v", m.Now(), itemIDs(m))
	}
	if it, _ := m.Get("c"); it.Time != 100 || it.Expires != 120 {
		t.Fatalf("c: time %d expires %d", it.Time, it.Expires)
	}
	if res := apply(m, retrieveAt(v, 150)); len(res[0].Matches) != 0 || m.Len() != 0 {
		t.Fatalf("at 150: %v, len %d", matchIDs(res[0].Matches), m.Len())
	}
}

// TestRestoreByReplay keeps a processor's durable state of a memory (its
// items, with some tombstones of expired items lost), restores it into a
// new memory by storing the items oldest first with their Time and Expires,
// then Expire(Now()), and checks that both memories hold the same items and
// give the same results to the same further batches.
func TestRestoreByReplay(t *testing.T) {
	lostTotal := 0
	defer func() {
		if lostTotal < 20 {
			t.Errorf("only %d lost tombstones", lostTotal)
		}
	}()
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 77))
		cfg := Config{Dim: 3, Capacity: 1 + r.IntN(12), Eviction: Eviction(seed % 2)}
		a := newMemory(t, cfg)
		g := newGen(seed, cfg.Dim, cfg.Capacity)
		lost := map[string]Item{}      // expired, tombstone lost
		orig := map[string][]float32{} // the vector the current version of an id was stored with
		var res []Result
		run := func(m *Memory, ops []Op) []Result {
			res = make([]Result, len(ops))
			m.Apply(ops, res)
			return res
		}
		for range 20 {
			prev := snapshot(a, orig)
			ops, _ := g.batch(1+r.IntN(20), false)
			run(a, ops)
			named := map[string]bool{}
			for _, op := range ops {
				if op.Kind != OpRetrieve {
					delete(lost, op.ID) // a newer version, or a forget
					named[op.ID] = true
				}
				if op.Kind == OpStore {
					orig[op.ID] = op.Vector
				}
			}
			// Lose the tombstone of half the items that expired, unless
			// an op of the batch wrote their id again.
			for _, id := range a.Expired() {
				if it, ok := prev[id]; ok && !named[id] && r.IntN(2) == 0 {
					lost[id] = it
				}
			}
		}
		durable := slices.Collect(func(yield func(Item) bool) {
			for _, it := range snapshot(a, orig) {
				yield(it)
			}
			for _, it := range lost {
				yield(it)
			}
		})
		slices.SortFunc(durable, func(x, y Item) int { return int(x.Order) - int(y.Order) })
		b := newMemory(t, cfg)
		var replay []Op
		for _, it := range durable {
			replay = append(replay, Op{Kind: OpStore, ID: it.ID, Vector: it.Vector, Phase: it.Phase,
				Confidence: it.Confidence, Meta: it.Meta, Time: it.Time, Expires: it.Expires})
		}
		for _, r := range run(b, replay) {
			if r.HasEvicted {
				t.Fatalf("seed %d: the replay evicted %q", seed, r.Evicted)
			}
		}
		lostTotal += len(lost)
		b.Expire(a.Now())
		if err := sameItems(a, b); err != nil {
			t.Fatalf("seed %d: restored: %v", seed, err)
		}
		for batch := range 10 {
			ops, _ := g.batch(1+r.IntN(20), false)
			ra := slices.Clone(run(a, ops))
			rb := run(b, ops)
			for i := range ops {
				x, y := ra[i], rb[i]
				if x.Evicted != y.Evicted || x.Replaced != y.Replaced || x.Found != y.Found || !slices.Equal(matchIDs(x.Matches), matchIDs(y.Matches)) {
					t.Fatalf("seed %d batch %d op %d: %+v, restored %+v", seed, batch, i, x, y)
				}
			}
			if !slices.Equal(a.Expired(), b.Expired()) {
				t.Fatalf("seed %d batch %d: expired %q, restored %q", seed, batch, a.Expired(), b.Expired())
			}
			if err := sameItems(a, b); err != nil {
				t.Fatalf("seed %d batch %d: %v", seed, batch, err)
			}
		}
	}
}

// snapshot copies every item of m, by id, with the vector it was stored
// with (orig: restoring the unit vector would round it again).
func snapshot(m *Memory, orig map[string][]float32) map[string]Item {
	s := map[string]Item{}
	for it := range m.Items {
		it.Vector = orig[it.ID]
		s[it.ID] = it
	}
	return s
}

// sameItems compares the items of a and b, oldest first, but for Order.
func sameItems(a, b *Memory) error {
	var x, y []Item
	for it := range a.Items {
		x = append(x, it)
	}
	for it := range b.Items {
		y = append(y, it)
	}
	if len(x) != len(y) || a.Len() != b.Len() || a.Now() != b.Now() {
		return fmt.Errorf("%d items (now %d), restored %d (now %d)", len(x), a.Now(), len(y), b.Now())
	}
	for i := range x {
		p, q := x[i], y[i]
		if p.ID != q.ID || p.Time != q.Time || p.Expires != q.Expires || p.Phase != q.Phase ||
			p.Confidence != q.Confidence || !bytes.Equal(p.Meta, q.Meta) || !slices.Equal(p.Vector, q.Vector) {
			return fmt.Errorf("item %d: %+v, restored %+v", i, p, q)
		}
	}
	return nil
}
