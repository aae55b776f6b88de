package wire

import (
	"encoding/json"

	"github.com/vmihailenco/msgpack/v5"
)

// Stats is the message published to <prefix>.stats every interval. The
// latency percentiles are over the window, from HDR histograms with three
// significant digits.
type Stats struct {
	WindowS        float64                `msgpack:"window_s" json:"window_s"`
	Requests       uint64                 `msgpack:"requests" json:"requests"`
	Errors         uint64                 `msgpack:"errors" json:"errors"`
	Rejections     uint64                 `msgpack:"rejections" json:"rejections"`
	Results        uint64                 `msgpack:"results" json:"results"`
	RequestsPerS   float64                `msgpack:"requests_per_s" json:"requests_per_s"`
	ErrorsPerS     float64                `msgpack:"errors_per_s" json:"errors_per_s"`
	RejectionsPerS float64                `msgpack:"rejections_per_s" json:"rejections_per_s"`
	ResultsPerS    float64                `msgpack:"results_per_s" json:"results_per_s"`
	ErrorRate      float64                `msgpack:"error_rate" json:"error_rate"`
	TotalUS        Percentiles            `msgpack:"total_us" json:"total_us"`
	ProcessUS      Percentiles            `msgpack:"process_us" json:"process_us"`
	Batch          BatchSizes             `msgpack:"batch" json:"batch"`
	Memories       map[string]MemoryStats `msgpack:"memories" json:"memories"`
	RSSBytes       uint64                 `msgpack:"rss_bytes" json:"rss_bytes"`
}

// Percentiles of a latency in microseconds.
type Percentiles struct {
	P50 int64 `msgpack:"p50" json:"p50"`
	P95 int64 `msgpack:"p95" json:"p95"`
	P99 int64 `msgpack:"p99" json:"p99"`
	Max int64 `msgpack:"max" json:"max"`
}

// BatchSizes summarises the batches of a window.
type BatchSizes struct {
	Count int64   `msgpack:"count" json:"count"`
	Mean  float64 `msgpack:"mean" json:"mean"`
	Max   int     `msgpack:"max" json:"max"`
}

// MemoryStats is one memory's state as stats and metrics report it.
type MemoryStats struct {
	Size      int     `msgpack:"size" json:"size"`
	Capacity  int     `msgpack:"capacity" json:"capacity"`
	Threshold float64 `msgpack:"threshold" json:"threshold"`
	EMA       float64 `msgpack:"ema" json:"ema"`
}

// EncodeStats renders st for publication.
func EncodeStats(st Stats, asJSON bool) ([]byte, error) {
	if asJSON {
		return json.Marshal(st)
	}
	return msgpack.Marshal(st)
}
