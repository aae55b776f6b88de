package processor_test

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// TestRestartKeepsMemories stores, forgets and evicts through one
// processor, stops it, starts another on the same server and checks that
// the second holds the same items in the same order (retrieves and the
// eviction that follows agree with a reference) and resumes the filter's
// threshold.
func TestRestartKeepsMemories(t *testing.T) {
	const dim, capacity = 6, 40
	srv := startServer(t)
	cfg := processor.Config{Memory: pelm.Config{Dim: dim, Capacity: capacity}}
	e := startEnvOn(t, srv, cfg)
	next := e.sub("pelm.res.>")
	rng := rand.New(rand.NewPCG(3, 4))
	var items []refItem
	filt := newRefFilter()
	order := 0
	store := func(e *env, id string, moral float64) map[string]any {
		v := make([]float64, dim)
		for j := range v {
			v[j] = rng.NormFloat64()
		}
		ph := rng.Float64()
		e.publish(req{subject: "pelm.req.m.store", body: mp(t, map[string]any{"vector": v, "phase": ph, "id": id, "moral": moral, "meta": id})})
		res := result(t, next())
		acc, thr := filt.decide(moral)
		if res["accepted"] != acc || num(res["threshold"]) != thr {
			t.Fatalf("store %s: %v, want accepted %v at threshold %v", id, res, acc, thr)
		}
		if acc {
			for k := range items {
				if items[k].id == id {
					items = append(items[:k], items[k+1:]...)
					break
				}
			}
			if len(items) == capacity {
				items = items[1:]
			}
			items = append(items, refItem{id: id, vec: v, phase: ph, conf: 1, order: order})
			order++
		}
		return res
	}
	for i := 0; i < 70; i++ { // evicts 30, with some upserts and rejections
		moral := 0.95
		if i%7 == 3 {
			moral = 0.35
		}
		store(e, "i"+strconv.Itoa(i%60), moral)
	}
	e.publish(req{subject: "pelm.req.m.forget", body: mp(t, map[string]any{"id": "i55"})})
	result(t, next())
	for k := range items {
		if items[k].id == "i55" {
			items = append(items[:k], items[k+1:]...)
			break
		}
	}
	e.stop()

	e2 := startEnvOn(t, srv, cfg)
	next = e2.sub("pelm.res.>")
	q := make([]float64, dim)
	for j := range q {
		q[j] = rng.NormFloat64()
	}
	e2.publish(req{subject: "pelm.req.m.retrieve", body: mp(t, map[string]any{"vector": q, "phase": 0.5, "tolerance": 1, "top_k": 1000})})
	res := result(t, next())
	checkMatches(t, res, refRetrieve(items, q, 0.5, 1, 1000, 0))
	if got := len(res["matches"].([]any)); got != len(items) {
		t.Fatalf("restored memory holds %d items, want %d", got, len(items))
	}
	// The filter resumes its threshold (store checks it against the
	// reference), and the eviction order is the same.
	for i := 0; i < 5; i++ {
		store(e2, "after-restart-"+strconv.Itoa(i), 0.95)
	}
	e2.publish(req{subject: "pelm.req.m.retrieve", body: mp(t, map[string]any{"vector": q, "phase": 0.5, "tolerance": 1, "top_k": 1000})})
	checkMatches(t, result(t, next()), refRetrieve(items, q, 0.5, 1, 1000, 0))
}

// BenchmarkRestore reports how long rebuilding a full 20,000 × 384 memory
// from the state stream takes.
func BenchmarkRestore(b *testing.B) {
	const dim, n = 384, 20000
	srv := startServer(b)
	cfg := processor.Config{Memory: pelm.Config{Dim: dim}, StatsInterval: time.Hour}
	e := startEnvOn(b, srv, cfg)
	rng := rand.New(rand.NewPCG(1, 1))
	v := make([]float32, dim)
	for i := 0; i < n; i++ {
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		if _, err := e.js.PublishAsync("pelm.req.m.store", mp(b, map[string]any{"vector": v, "phase": rng.Float64(), "moral": 0.95})); err != nil {
			b.Fatal(err)
		}
	}
	<-e.js.PublishAsyncComplete()
	rq, _ := e.js.Stream(b.Context(), wire.RequestsStream)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := rq.Info(b.Context())
		if err == nil && info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("preload not processed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.stop()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	for b.Loop() {
		p, err := processor.New(nc, cfg)
		if err != nil {
			b.Fatal(err)
		}
		info, err := p.Restore()
		if err != nil {
			b.Fatal(err)
		}
		if info.Items != n {
			b.Fatalf("restored %d items, want %d", info.Items, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restore")
}
