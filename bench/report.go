package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pelm-dev/pelm/wire"
)

// Report is every figure of a run. It is what the JSON file holds.
type Report struct {
	Started  time.Time      `json:"started"`
	Elapsed  float64        `json:"elapsed_s"`
	Machine  Machine        `json:"machine"`
	Config   ConfigReport   `json:"config"`
	Settings map[string]any `json:"settings,omitempty"`

	// ResultBytes is the mean size of pelm's ok results per op in the
	// warm-up: the size of the echo's replies.
	ResultBytes  map[string]int `json:"result_bytes"`
	RequestBytes map[string]int `json:"request_bytes"`

	Steps   []Step    `json:"steps"`
	Compare []Ratio   `json:"compare"`
	Max     *MaxRates `json:"max,omitempty"`
	Targets []Target  `json:"targets"`
	Stray   int64     `json:"stray_results"`
	Notes   []string  `json:"notes,omitempty"`
}

// Machine is where the run happened.
type Machine struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
}

// ConfigReport is the run's Config as it was applied.
type ConfigReport struct {
	Prefix     string    `json:"prefix"`
	Memory     string    `json:"memory"`
	Memories   int       `json:"memories"`
	Dim        int       `json:"dim"`
	Preload    int       `json:"preload"`
	Rates      []float64 `json:"rates"`
	FindMax    bool      `json:"find_max"`
	MaxRate    float64   `json:"max_rate"`
	DurationS  float64   `json:"duration_s"`
	TimeoutS   float64   `json:"timeout_s"`
	MaxP99US   int64     `json:"max_p99_us"`
	Mix        string    `json:"mix"`
	Phases     string    `json:"phases"`
	Seed       uint64    `json:"seed"`
	BatchMax   int       `json:"echo_batch_max"`
	BatchWaitS float64   `json:"echo_batch_wait_s"`
	Echo       bool      `json:"echo"`
	// KeepResults: a stream stored every result (Config.KeepResults).
	KeepResults bool `json:"keep_results"`
	// TTLS is the load's ttl in seconds (Config.TTL), 0 without.
	TTLS float64 `json:"ttl_s"`
}

// Step is one load phase against one system.
type Step struct {
	System      string  `json:"system"` // "pelm" or "echo"
	Kind        string  `json:"kind"`   // KindPreload, KindWarmup, KindRate, KindProbe or KindHalfMax
	OfferedPerS float64 `json:"offered_per_s"`
	DurationS   float64 `json:"duration_s"`

	Sent        int64 `json:"sent"`
	Results     int64 `json:"results"` // within the timeout, ok or not
	OK          int64 `json:"ok"`
	Errors      int64 `json:"errors"`
	Missing     int64 `json:"missing"` // no result within the timeout
	PublishErrs int64 `json:"publish_errors"`
	Late        int64 `json:"late"`
	Duplicates  int64 `json:"duplicates"`
	// Purged counts requests still unanswered after the step settled,
	// removed from the stream so that the next step starts idle.
	Purged int64 `json:"purged"`
	// Aborted says the step stopped sending early: more requests were
	// unanswered than a sustainable rate allows (see the package doc).
	Aborted bool `json:"aborted"`

	SentPerS       float64 `json:"sent_per_s"`
	ThroughputPerS float64 `json:"throughput_per_s"` // results/s, from the step's first intended send to its last result
	ErrorRate      float64 `json:"error_rate"`       // (errors + missing) / requests
	Sustainable    bool    `json:"sustainable"`

	LatencyUS  Latency            `json:"latency_us"` // intended send to result
	ByOp       map[string]Latency `json:"latency_us_by_op"`
	ErrorCodes map[string]int64   `json:"error_codes,omitempty"`
	// Server is what pelm published on <prefix>.stats while the step ran
	// (every --stats-interval), when it publishes stats.
	Server []wire.Stats `json:"server,omitempty"`
}

// Latency is a latency distribution in microseconds.
type Latency struct {
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P95   int64   `json:"p95"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p999"`
	Max   int64   `json:"max"`
	Mean  float64 `json:"mean"`
	Count int64   `json:"count"`
}

// Ratio is pelm's figures over the echo's at one offered rate: 1 means as
// fast as JetStream alone; a latency ratio of 3 means three times the
// floor's latency.
type Ratio struct {
	Kind        string  `json:"kind"`
	OfferedPerS float64 `json:"offered_per_s"`
	Throughput  float64 `json:"throughput"`
	P50         float64 `json:"p50"`
	P95         float64 `json:"p95"`
	P99         float64 `json:"p99"`
	Max         float64 `json:"max"`
}

// MaxRates is the outcome of Config.FindMax.
type MaxRates struct {
	EchoPerS float64 `json:"echo_per_s"`
	PelmPerS float64 `json:"pelm_per_s"`
	Ratio    float64 `json:"ratio"` // pelm / echo
}

// Target is one goal and what the run measured against it.
type Target struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Got    string `json:"got"`
	Status string `json:"status"` // StatusMet, StatusMissed or StatusNotMeasured
}

// Target statuses.
const (
	StatusMet         = "met"
	StatusMissed      = "missed"
	StatusNotMeasured = "not measured"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench: write json: %w", err)
	}
	return nil
}

// steps returns the steps of one system and kinds, in run order.
func (r *Report) steps(sys string, kinds ...string) []Step {
	var out []Step
	for _, s := range r.Steps {
		if s.System != sys {
			continue
		}
		for _, k := range kinds {
			if s.Kind == k {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// find returns the last step of a system and kind at an offered rate.
func (r *Report) find(sys, kind string, rate float64) *Step {
	var found *Step
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.System == sys && s.Kind == kind && s.OfferedPerS == rate {
			found = s
		}
	}
	return found
}
