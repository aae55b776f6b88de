package processor_test

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
)

// TestStreamOrderUnderBatching publishes a burst of mixed requests to two
// memories, so that they arrive in large batches, and checks every result
// against a one-by-one reference: a retrieve sees exactly the stores before
// it in the stream.
func TestStreamOrderUnderBatching(t *testing.T) {
	const dim, n = 8, 400
	e := startEnv(t, processor.Config{
		Memory: pelm.Config{Dim: dim, Capacity: 50},
		Batch:  batcher.Config{MaxSize: 128, MaxWait: 20 * time.Millisecond},
	})
	next := e.sub("pelm.res.>")
	rng := rand.New(rand.NewPCG(1, 2))
	type sent struct {
		seq    uint64
		memory string
		op     string
		want   []refMatch
		found  bool
	}
	refs := map[string][]refItem{}
	var all []sent
	order := 0
	for i := 0; i < n; i++ {
		mem := "a"
		if rng.IntN(3) == 0 {
			mem = "b"
		}
		vec := make([]float64, dim)
		for j := range vec {
			vec[j] = rng.NormFloat64()
		}
		phase := rng.Float64()
		s := sent{memory: mem}
		var body map[string]any
		switch r := rng.IntN(10); {
		case r < 5:
			s.op = "store"
			id := "i" + strconv.Itoa(rng.IntN(80)) // repeated ids upsert
			body = map[string]any{"vector": vec, "phase": phase, "id": id, "moral": 0.95}
			items := refs[mem]
			for k := range items {
				if items[k].id == id {
					items = append(items[:k], items[k+1:]...)
					break
				}
			}
			if len(items) == 50 {
				items = items[1:] // fifo
			}
			refs[mem] = append(items, refItem{id: id, vec: vec, phase: phase, conf: 1, order: order})
			order++
		case r < 9:
			s.op = "retrieve"
			body = map[string]any{"vector": vec, "phase": phase, "tolerance": 0.3, "top_k": 4}
			s.want = refRetrieve(refs[mem], vec, phase, 0.3, 4, 0)
		default:
			s.op = "forget"
			id := "i" + strconv.Itoa(rng.IntN(80))
			body = map[string]any{"id": id}
			items := refs[mem]
			for k := range items {
				if items[k].id == id {
					refs[mem], s.found = append(items[:k], items[k+1:]...), true
					break
				}
			}
		}
		s.seq = e.publish(req{subject: "pelm.req." + mem + "." + s.op, body: mp(t, body)})
		all = append(all, s)
	}
	bySeq := map[uint64]sent{}
	for _, s := range all {
		bySeq[s.seq] = s
	}
	maxBatch := 0.0
	for range all {
		res := result(t, next())
		s := bySeq[uint64(num(res["seq"]))]
		if res["op"] != s.op || res["memory"] != s.memory {
			t.Fatalf("result %v does not match request %+v", res, s)
		}
		maxBatch = max(maxBatch, num(res["latency"].(map[string]any)["batch"]))
		switch s.op {
		case "retrieve":
			checkMatches(t, res, s.want)
		case "forget":
			if res["found"] != s.found {
				t.Errorf("seq %d forget: found %v, want %v", s.seq, res["found"], s.found)
			}
		}
	}
	if maxBatch < 2 {
		t.Errorf("largest batch was %v: the burst was never batched, so this test proved nothing", maxBatch)
	}
}
