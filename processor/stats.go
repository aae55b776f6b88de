package processor

import (
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/pelm-dev/pelm/wire"
)

// batchStats counts one batch's outcomes before they are folded into the
// window under its lock, once per batch.
type batchStats struct {
	requests, errors, rejections, results uint64
}

func (b *batchStats) add(o *wire.Outcome) {
	b.requests++
	switch o.Kind() {
	case "error":
		b.errors++
	case "rejected":
		b.rejections++
	}
}

const maxTrackedUS = 10 * 60 * 1_000_000 // latencies above ten minutes are recorded as ten minutes

// statsWindow accumulates between publications. The batch loop writes it
// once per batch; the stats loop reads and resets it.
type statsWindow struct {
	mu                  sync.Mutex
	since               time.Time
	total, process      *hdrhistogram.Histogram
	counts              batchStats
	batches, batchItems int64
	batchMax            int
	memories            map[string]wire.MemoryStats
}

func newStatsWindow() *statsWindow {
	return &statsWindow{
		since:    time.Now(),
		total:    hdrhistogram.New(1, maxTrackedUS, 3),
		process:  hdrhistogram.New(1, maxTrackedUS, 3),
		memories: map[string]wire.MemoryStats{},
	}
}

func clampUS(v int64) int64 { return min(max(v, 1), maxTrackedUS) }

func (w *statsWindow) record(b *batchStats, slots []slot, mems []*memory) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range slots {
		if slots[i].replayed() {
			continue // a stored result: its latency is the first delivery's
		}
		o := &slots[i].out
		_ = w.total.RecordValue(clampUS(o.TotalUS))
		_ = w.process.RecordValue(clampUS(o.ProcessUS))
	}
	w.counts.requests += b.requests
	w.counts.errors += b.errors
	w.counts.rejections += b.rejections
	w.counts.results += b.results
	w.batches++
	w.batchItems += int64(len(slots))
	w.batchMax = max(w.batchMax, len(slots))
	for _, m := range mems {
		if len(m.reqs) > 0 {
			w.memories[m.name] = m.stats()
		}
	}
}

// dropped forgets a dropped memory.
func (w *statsWindow) dropped(name string) {
	w.mu.Lock()
	delete(w.memories, name)
	w.mu.Unlock()
}

// snapshot returns the window's figures and starts a new window.
func (w *statsWindow) snapshot(now time.Time) wire.Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	sec := now.Sub(w.since).Seconds()
	if sec <= 0 {
		sec = 1e-9
	}
	c := w.counts
	st := wire.Stats{
		WindowS:        sec,
		Requests:       c.requests,
		Errors:         c.errors,
		Rejections:     c.rejections,
		Results:        c.results,
		RequestsPerS:   float64(c.requests) / sec,
		ErrorsPerS:     float64(c.errors) / sec,
		RejectionsPerS: float64(c.rejections) / sec,
		ResultsPerS:    float64(c.results) / sec,
		TotalUS:        percentiles(w.total),
		ProcessUS:      percentiles(w.process),
		Batch:          wire.BatchSizes{Count: w.batches, Max: w.batchMax},
		Memories:       make(map[string]wire.MemoryStats, len(w.memories)),
		RSSBytes:       residentBytes(),
	}
	if c.requests > 0 {
		st.ErrorRate = float64(c.errors) / float64(c.requests)
	}
	if w.batches > 0 {
		st.Batch.Mean = float64(w.batchItems) / float64(w.batches)
	}
	for k, v := range w.memories {
		st.Memories[k] = v
	}
	w.since = now
	w.total.Reset()
	w.process.Reset()
	w.counts = batchStats{}
	w.batches, w.batchItems, w.batchMax = 0, 0, 0
	return st
}

func percentiles(h *hdrhistogram.Histogram) wire.Percentiles {
	if h.TotalCount() == 0 {
		return wire.Percentiles{}
	}
	return wire.Percentiles{P50: h.ValueAtQuantile(50), P95: h.ValueAtQuantile(95), P99: h.ValueAtQuantile(99), Max: h.Max()}
}

// residentBytes is the process's resident set size from /proc, or the Go
// runtime's total mapped memory where /proc is not there.
func residentBytes() uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := bytes.Fields(b)
		if len(f) > 1 {
			if pages, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}
