package processor_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// TestReplayWhenItemsDisplaced covers stores whose items a later request of
// the same batch displaces before anything is acked: an upsert, an eviction
// and a forget. The processor dies after publishing and before acking; its
// successor must answer all the redeliveries with the first results, byte
// for byte (from the journal), and run none of them again.
func TestReplayWhenItemsDisplaced(t *testing.T) {
	srv := startServer(t)
	cfg := processor.Config{
		Memory: pelm.Config{Dim: 4, Capacity: 2},
		// The five requests below make one batch as soon as the fifth is in.
		Batch: batcher.Config{MaxSize: 5, MaxWait: time.Minute},
	}
	e, crash := startCrashable(t, srv, cfg, processor.HookBeforeAck) // no ack reaches the server
	results := make(chan *nats.Msg, 64)
	sub, err := e.nc.ChanSubscribe("pelm.res.>", results)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	reqs := []req{
		{subject: "pelm.req.m.store", body: mp(t, map[string]any{"id": "a", "vector": []float64{1, 0, 0, 0}, "phase": 0.5, "moral": 0.9})},
		{subject: "pelm.req.m.store", body: mp(t, map[string]any{"id": "b", "vector": []float64{0, 1, 0, 0}, "phase": 0.5, "moral": 0.9})},
		{subject: "pelm.req.m.store", body: mp(t, map[string]any{"id": "a", "vector": []float64{0, 0, 1, 0}, "phase": 0.5, "moral": 0.9})}, // upsert: displaces the first
		{subject: "pelm.req.m.store", body: mp(t, map[string]any{"id": "c", "vector": []float64{0, 0, 0, 1}, "phase": 0.5, "moral": 0.9})}, // evicts b
		{subject: "pelm.req.m.forget", body: mp(t, map[string]any{"id": "c"})},
	}
	for _, r := range reqs {
		e.publish(r)
	}
	firstRes := map[string][]byte{}
	for len(firstRes) < len(reqs) {
		select {
		case m := <-results:
			firstRes[m.Header.Get(wire.HeaderSeq)] = m.Data
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d first results", len(firstRes), len(reqs))
		}
	}
	crash() // already crashed at its first ack: wait for it

	startEnvOn(t, srv, cfg)
	seen := map[string]bool{}
	for len(seen) < len(reqs) {
		select {
		case m := <-results:
			seq := m.Header.Get(wire.HeaderSeq)
			if !bytes.Equal(m.Data, firstRes[seq]) {
				a, _ := wire.BodyJSON(firstRes[seq], "")
				b, _ := wire.BodyJSON(m.Data, "")
				t.Fatalf("request %s answered twice differently: it ran again\nfirst %s\nthen  %s", seq, a, b)
			}
			seen[seq] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d requests were redelivered and answered", len(seen), len(reqs))
		}
	}
	snap := durableSnapshot(t, e.nc, cfg)
	items := snap["m"].Items
	if len(items) != 1 || items[0].ID != "a" || items[0].Vector[2] != 1 {
		t.Fatalf("memory holds %+v, want only a with its second vector", items)
	}
}
