package processor_test

import (
	"testing"
	"time"

	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// TestStatsPublished checks that pelm.stats carries the window's counts,
// percentiles and memory state.
func TestStatsPublished(t *testing.T) {
	e := startEnv(t, processor.Config{StatsInterval: 100 * time.Millisecond})
	stats := e.sub("pelm.stats")
	res := e.sub("pelm.res.>")
	for i := 0; i < 10; i++ {
		e.publish(req{subject: "pelm.req.m.store", body: mp(t, map[string]any{"vector": []float64{1, 2, 3, float64(i)}, "phase": 0.5, "moral": 0.95})})
	}
	e.publish(req{subject: "pelm.req.m.store", body: []byte{0xc1}})                                                                       // an error
	e.publish(req{subject: "pelm.req.m.store", body: mp(t, map[string]any{"vector": []float64{1, 2, 3, 4}, "phase": 0.5, "moral": 0.1})}) // a rejection
	for i := 0; i < 12; i++ {
		res()
	}
	var sum wire.Stats
	var last wire.Stats
	deadline := time.Now().Add(10 * time.Second)
	for sum.Requests < 12 && time.Now().Before(deadline) {
		var st wire.Stats
		if err := msgpack.Unmarshal(stats().Data, &st); err != nil {
			t.Fatalf("stats is not msgpack: %v", err)
		}
		sum.Requests += st.Requests
		sum.Errors += st.Errors
		sum.Rejections += st.Rejections
		sum.Results += st.Results
		if st.Requests > 0 {
			last = st
			if st.TotalUS.P50 <= 0 || st.TotalUS.Max < st.TotalUS.P99 || st.ProcessUS.P50 <= 0 || st.Batch.Mean < 1 {
				t.Errorf("implausible window: %+v", st)
			}
		}
		if st.WindowS <= 0 || st.RSSBytes == 0 {
			t.Errorf("window %v s, rss %d", st.WindowS, st.RSSBytes)
		}
	}
	if sum.Requests != 12 || sum.Results != 12 || sum.Errors != 1 || sum.Rejections != 1 {
		t.Fatalf("stats counted %d requests, %d results, %d errors, %d rejections; want 12, 12, 1, 1", sum.Requests, sum.Results, sum.Errors, sum.Rejections)
	}
	m, ok := last.Memories["m"]
	if !ok || m.Size != 10 || m.Capacity != 20000 || m.Threshold < 0.3 || m.Threshold > 0.9 {
		t.Errorf("memory stats %+v", last.Memories)
	}
}
