package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	_ "image/png"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/bench"
	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

func startServer(t *testing.T) *server.Server {
	t.Helper()
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	s := natstest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startProcessor runs pelm's processor with vectors of dim on s until the
// test ends, publishing stats every 200ms, and returns once its consumer
// exists.
func startProcessor(t *testing.T, s *server.Server, dim int) {
	t.Helper()
	p, err := processor.New(connect(t, s), processor.Config{Memory: pelm.Config{Dim: dim}, StatsInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	js, err := jetstream.New(connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if processor.Serving(context.Background(), js) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the processor's consumer did not appear within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tiny is a run small enough for a test: a few hundred requests.
func tiny() bench.Config {
	return bench.Config{
		Dim:      8,
		Preload:  200,
		Rates:    []float64{100},
		Duration: time.Second,
		Timeout:  3 * time.Second,
		MaxP99:   2 * time.Second, // -race on a shared machine is slow; the figures are not judged here
		Warmup:   200 * time.Millisecond,
		Phases:   bench.Uniform,
	}
}

// TestReport runs pelm and the echo floor as a user's `pelm bench` would,
// and checks the report they would read: every figure in the JSON, a PNG
// that decodes, a table with the floor beside pelm, and no errors.
func TestReport(t *testing.T) {
	s := startServer(t)
	startProcessor(t, s, 8)
	cfg := tiny()
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := bench.Run(context.Background(), connect(t, s), connect(t, s), cfg)
	if err != nil {
		t.Fatal(err)
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatalf("the JSON does not parse: %v", err)
	}
	for _, k := range []string{"started", "elapsed_s", "machine", "config", "result_bytes", "request_bytes", "steps", "compare", "targets"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("the JSON has no %q", k)
		}
	}
	steps, _ := doc["steps"].([]any)
	seen := map[string]bool{}
	for _, x := range steps {
		st := x.(map[string]any)
		seen[st["system"].(string)+"/"+st["kind"].(string)] = true
		for _, k := range []string{"offered_per_s", "sent", "results", "ok", "errors", "missing", "throughput_per_s", "error_rate", "sustainable", "latency_us", "latency_us_by_op"} {
			if _, ok := st[k]; !ok {
				t.Errorf("step %v/%v has no %q", st["system"], st["kind"], k)
			}
		}
		lat := st["latency_us"].(map[string]any)
		for _, k := range []string{"p50", "p90", "p95", "p99", "p999", "max", "mean", "count"} {
			if _, ok := lat[k]; !ok {
				t.Errorf("step %v/%v latency has no %q", st["system"], st["kind"], k)
			}
		}
	}
	for _, want := range []string{"pelm/preload", "pelm/warmup", "echo/warmup", "echo/rate", "pelm/rate"} {
		if !seen[want] {
			t.Errorf("no %s step in %v", want, seen)
		}
	}

	for _, st := range rep.Steps {
		if st.Errors != 0 || st.Missing != 0 || st.Sent == 0 || st.Results != st.Sent {
			t.Errorf("%s %s: sent %d, results %d, errors %d (%v), missing %d", st.System, st.Kind, st.Sent, st.Results, st.Errors, st.ErrorCodes, st.Missing)
		}
		if st.LatencyUS.Count != st.Results || st.LatencyUS.P50 <= 0 || st.LatencyUS.P99 < st.LatencyUS.P50 || st.LatencyUS.Max < st.LatencyUS.P99 {
			t.Errorf("%s %s: latency %+v for %d results", st.System, st.Kind, st.LatencyUS, st.Results)
		}
		if st.System == "pelm" && st.Kind == bench.KindRate {
			if len(st.Server) == 0 || st.Server[0].Memories["bench"].Size == 0 {
				t.Errorf("pelm's rate step has no stats from pelm: %+v", st.Server)
			}
			for _, op := range []string{"store", "retrieve", "process"} {
				if st.ByOp[op].Count == 0 {
					t.Errorf("pelm's rate step has no %s results: %v", op, st.ByOp)
				}
			}
		}
	}
	if len(rep.Compare) != 1 || rep.Compare[0].Throughput <= 0 || rep.Compare[0].P99 <= 0 {
		t.Errorf("pelm/echo comparison: %+v", rep.Compare)
	}
	if rep.ResultBytes["store"] < 50 || rep.ResultBytes["retrieve"] <= rep.ResultBytes["store"] {
		t.Errorf("result sizes from the warm-up: %v", rep.ResultBytes)
	}
	if len(rep.Targets) != 7 {
		t.Errorf("%d targets, want 7: %+v", len(rep.Targets), rep.Targets)
	}
	for _, tg := range rep.Targets {
		if tg.Status == "" || tg.Want == "" || tg.Got == "" {
			t.Errorf("target %+v is not filled in", tg)
		}
	}

	var png bytes.Buffer
	if err := rep.WritePlot(&png); err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(&png)
	if err != nil || format != "png" || img.Bounds().Dx() < 400 {
		t.Fatalf("plot: %v %q %v", err, format, img)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pelm/echo", "ancestor target", "echo", "targets", "ancestor P99"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	if !strings.Contains(progress.String(), "pelm rate 100/s") {
		t.Errorf("no progress line for the rate step:\n%s", progress.String())
	}
}

// TestFindMax searches the highest sustainable rate of a store-only load
// and runs half of it: the report then judges the two targets that need
// the search.
func TestFindMax(t *testing.T) {
	if testing.Short() {
		t.Skip("a search of several probes")
	}
	s := startServer(t)
	startProcessor(t, s, 8)
	cfg := tiny()
	cfg.Rates = nil
	cfg.FindMax = true
	cfg.Mix = bench.Mix{Store: 1}
	cfg.Preload = bench.NoPreload
	cfg.Duration = 250 * time.Millisecond
	cfg.MaxRate = 2000 // tiny's MaxP99 of 2 s: the search is tested, not this machine's latency
	rep, err := bench.Run(context.Background(), connect(t, s), connect(t, s), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Max == nil || rep.Max.PelmPerS <= 0 || rep.Max.EchoPerS <= 0 {
		t.Fatalf("max rates: %+v", rep.Max)
	}
	probes := map[string]int{}
	for _, st := range rep.Steps {
		if st.Kind == bench.KindProbe {
			probes[st.System]++
		}
	}
	if probes["pelm"] < 2 || probes["echo"] < 2 {
		t.Errorf("probes: %v", probes)
	}
	var half []bench.Step
	for _, st := range rep.Steps {
		if st.Kind == bench.KindHalfMax {
			half = append(half, st)
		}
	}
	if len(half) != 2 || half[0].OfferedPerS != half[1].OfferedPerS || half[0].OfferedPerS != math.Round(rep.Max.PelmPerS/2) {
		t.Errorf("half-max steps: %+v (max %+v)", half, rep.Max)
	}
	for _, tg := range rep.Targets {
		if strings.HasPrefix(tg.Name, "store-only") || strings.HasPrefix(tg.Name, "p99 at half") {
			if tg.Status == bench.StatusNotMeasured {
				t.Errorf("target %q not measured: %s", tg.Name, tg.Got)
			}
		}
	}
}

// TestNothingAnswers runs against a server where no processor runs: the
// tool says so instead of reporting a rate.
func TestNothingAnswers(t *testing.T) {
	s := startServer(t)
	cfg := tiny()
	cfg.Preload = bench.NoPreload
	cfg.Timeout = 300 * time.Millisecond
	_, err := bench.Run(context.Background(), connect(t, s), nil, cfg)
	if !errors.Is(err, bench.ErrNoResults) {
		t.Fatalf("got %v, want ErrNoResults", err)
	}
	if !strings.Contains(err.Error(), "is it running") {
		t.Errorf("the error does not say what to check: %v", err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     bench.Config
		wantErr bool
	}{
		{name: "zero is the defaults", cfg: bench.Config{}},
		{name: "find max without rates", cfg: bench.Config{FindMax: true}},
		{name: "same prefix as pelm", cfg: bench.Config{EchoPrefix: "pelm"}, wantErr: true},
		{name: "wildcard prefix", cfg: bench.Config{Prefix: "pelm.*"}, wantErr: true},
		{name: "bad memory", cfg: bench.Config{Memory: "a.b"}, wantErr: true},
		{name: "dim too large", cfg: bench.Config{Dim: 5000}, wantErr: true},
		{name: "zero rate", cfg: bench.Config{Rates: []float64{0}}, wantErr: true},
		{name: "negative weight", cfg: bench.Config{Mix: bench.Mix{Store: -1, Retrieve: 2}}, wantErr: true},
		{name: "unknown phases", cfg: bench.Config{Phases: 7}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, bench.ErrConfig) {
				t.Errorf("%v is not ErrConfig", err)
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    bench.Mix
		wantErr bool
	}{
		{name: "all four", in: "store=1,retrieve=2,process=3,forget=4", want: bench.Mix{Store: 1, Retrieve: 2, Process: 3, Forget: 4}},
		{name: "spaces and a left-out op", in: " store = 3 , retrieve=1", want: bench.Mix{Store: 3, Retrieve: 1}},
		{name: "store only", in: "store=1", want: bench.Mix{Store: 1}},
		{name: "unknown op", in: "store=1,upsert=1", wantErr: true},
		{name: "no weight", in: "store", wantErr: true},
		{name: "negative", in: "store=-1", wantErr: true},
		{name: "all zero", in: "store=0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ParseMix(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMix(%q) = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("ParseMix(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if err == nil {
				if back, _ := bench.ParseMix(got.String()); back != got {
					t.Errorf("%q does not read back: %+v", got.String(), back)
				}
			}
		})
	}
	if !(bench.Mix{Store: 2}).StoreOnly() || bench.DefaultMix.StoreOnly() {
		t.Error("StoreOnly")
	}
}

func TestParsePhases(t *testing.T) {
	for in, want := range map[string]bench.Phases{"wakesleep": bench.WakeSleep, "Uniform": bench.Uniform} {
		if got, err := bench.ParsePhases(in); err != nil || got != want || !strings.EqualFold(got.String(), in) {
			t.Errorf("ParsePhases(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := bench.ParsePhases("sleep"); !errors.Is(err, bench.ErrConfig) {
		t.Errorf("ParsePhases(sleep) = %v", err)
	}
}

// TestMemories spreads a run over four memories, as a user loading several
// processes' partitions does: the preload lands evenly in bench-0 to
// bench-3 and nothing in the one memory of a run without --memories.
func TestMemories(t *testing.T) {
	s := startServer(t)
	startProcessor(t, s, 8)
	cfg := tiny()
	cfg.Memories = 4
	cfg.Warmup = -1
	cfg.Mix = bench.Mix{Retrieve: 1}
	cfg.Rates = []float64{50}
	if _, err := bench.Run(context.Background(), connect(t, s), nil, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"bench-0", "bench-1", "bench-2", "bench-3"} {
		res, err := c.Info(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if res.Size != cfg.Preload/4 {
			t.Errorf("memory %s holds %d items, want %d", m, res.Size, cfg.Preload/4)
		}
	}
	if _, err := c.Info(context.Background(), "bench"); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("memory bench: %v, want it not found", err)
	}
}
