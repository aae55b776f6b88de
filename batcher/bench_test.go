package batcher

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkBatcher pushes b.N items from one goroutine through Run.
func BenchmarkBatcher(b *testing.B) {
	for _, cfg := range []Config{
		{MaxSize: 64, MaxWait: time.Millisecond},
		{MaxSize: 256, MaxWait: time.Millisecond},
		{MaxSize: 256, MaxWait: NoWait},
	} {
		name := fmt.Sprintf("size=%d/wait=%v", cfg.MaxSize, cfg.MaxWait)
		if cfg.MaxWait == NoWait {
			name = fmt.Sprintf("size=%d/wait=none", cfg.MaxSize)
		}
		b.Run(name, func(b *testing.B) {
			bt, err := New[int](cfg)
			if err != nil {
				b.Fatal(err)
			}
			in := make(chan int, 1024)
			batches, sum := 0, 0
			errc := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				errc <- bt.Run(context.Background(), in, func(batch []int) {
					batches++
					for _, v := range batch {
						sum += v
					}
				})
			}()
			for i := range b.N {
				in <- i
			}
			close(in)
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if want := b.N * (b.N - 1) / 2; sum != want {
				b.Fatalf("sum %d, want %d", sum, want)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64(b.N)/float64(batches), "items/batch")
		})
	}
}
