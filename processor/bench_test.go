package processor_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkEndToEndStore publishes b.N store requests of 384 float32 as one
// burst through a real JetStream and waits for every result. It reports
// results/s and the p50/p99 of the results' latency.total_us. Run it as
// `go test -run '^$' -bench EndToEndStore -benchtime 100000x ./processor/`.
func BenchmarkEndToEndStore(b *testing.B) {
	const dim = 384
	e := startEnvOn(b, startServer(b), processor.Config{Memory: pelm.Config{Dim: dim}})
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
		if _, err := e.js.PublishAsync("pelm.req.m.store", bodies[i%len(bodies)]); err != nil {
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
