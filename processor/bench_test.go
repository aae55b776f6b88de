package processor_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkEndToEndStore publishes b.N store requests of 384 float32
// through a real JetStream, either as one burst or paced at a fixed rate,
// and waits for every result. It reports results/s and the p50/p99 of the
// results' latency.total_us (stream time to result: in a burst that is
// mostly the queue the burst builds). Run it as
// `go test -run '^$' -bench EndToEndStore -benchtime 100000x ./processor/`.
func BenchmarkEndToEndStore(b *testing.B) {
	for _, wait := range []time.Duration{time.Millisecond, batcher.NoWait} {
		name := "wait=1ms"
		if wait == batcher.NoWait {
			name = "wait=0"
		}
		b.Run(name+"/burst", func(b *testing.B) { benchStore(b, wait, 0, false) })
		b.Run(name+"/burst/kept", func(b *testing.B) { benchStore(b, wait, 0, true) })
		b.Run(name+"/rate=5000", func(b *testing.B) { benchStore(b, wait, 5000, false) })
		b.Run(name+"/rate=5000/kept", func(b *testing.B) { benchStore(b, wait, 5000, true) })
		b.Run(name+"/rate=20000", func(b *testing.B) { benchStore(b, wait, 20000, false) })
	}
}

// benchStore publishes b.N stores, at rate per second or all at once (0).
// With kept, a stream keeps the results, so that each request is acked
// only once its result is stored (what that costs).
func benchStore(b *testing.B, wait time.Duration, rate int, kept bool) {
	const dim = 384
	srv := startServer(b)
	if kept {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"pelm.res.>"}}); err != nil {
			b.Fatal(err)
		}
		nc.Close()
	}
	e := startEnvOn(b, srv, processor.Config{Memory: pelm.Config{Dim: dim}, Batch: batcher.Config{MaxWait: wait}})
	results := make(chan *nats.Msg, 1<<16)
	sub, err := e.nc.ChanSubscribe("pelm.res.>", results)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	rng := rand.New(rand.NewPCG(1, 1))
	bodies := make([][]byte, 64)
	for i := range bodies {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		bodies[i] = mp(b, map[string]any{"vector": v, "phase": rng.Float64(), "moral": 0.95})
	}
	// A burst outruns the default window of unacknowledged publishes.
	pub, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(1<<17))
	if err != nil {
		b.Fatal(err)
	}
	hist := hdrhistogram.New(1, 600_000_000, 3)
	b.ResetTimer()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var r struct {
			Latency struct {
				TotalUS int64 `msgpack:"total_us"`
			} `msgpack:"latency"`
		}
		for i := 0; i < b.N; i++ {
			select {
			case m := <-results:
				if err := msgpack.Unmarshal(m.Data, &r); err != nil {
					b.Error(err)
					return
				}
				_ = hist.RecordValue(max(r.Latency.TotalUS, 1))
			case <-time.After(30 * time.Second):
				b.Errorf("%d of %d results after 30s", i, b.N)
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		if rate > 0 && i%(rate/1000) == 0 { // pace in 1 ms steps
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		}
		if _, err := pub.PublishAsync("pelm.req.m.store", bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "results/s")
	b.ReportMetric(float64(hist.ValueAtQuantile(50)), "p50_us")
	b.ReportMetric(float64(hist.ValueAtQuantile(99)), "p99_us")
}
