package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/bench"
	"github.com/pelm-dev/pelm/processor"
)

type benchFlags struct {
	preload                    int
	rates                      string
	findMax                    bool
	duration, timeout          time.Duration
	maxP99, warmup, ttl        time.Duration
	window, memories           int
	mix, phases, memory        string
	seed                       uint64
	noEcho, quiet, keepResults bool
	jsonOut, plotOut           string
	cpuProfile, memProfile     string
	echoPrefix, inboxPrefix    string
}

// benchFlagSet is serve's flags (the in-process processor's settings, and
// --nats-url) plus the load's. The embedded server listens on a random
// port and keeps its data in a temporary directory unless told otherwise.
func benchFlagSet(stderr io.Writer) (*flag.FlagSet, *serveFlags, *benchFlags) {
	fs, sf := serveFlagSet(stderr)
	fs.Init("pelm bench", flag.ContinueOnError)
	setDefault(fs, "nats-listen", "127.0.0.1:-1")
	setDefault(fs, "data-dir", "")
	setDefault(fs, "log-level", "warn")
	setDefault(fs, "log-format", "console")
	setDefault(fs, "stats-interval", "1s")
	fs.Lookup("data-dir").Usage = "where the embedded NATS server stores its JetStream data; empty uses a temporary directory, removed afterwards"
	fs.Lookup("nats-listen").Usage = "where the embedded NATS server listens (port -1: any free port)"

	bf := &benchFlags{}
	fs.IntVar(&bf.preload, "preload", bench.DefaultPreload, "items stored before the load (0: none)")
	fs.StringVar(&bf.rates, "rates", "1000,5000,10000", "comma-separated offered rates, requests/s (empty: none)")
	fs.BoolVar(&bf.findMax, "find-max", false, "search each system's highest sustainable rate, then run both at half pelm's")
	fs.DurationVar(&bf.duration, "duration", bench.DefaultDuration, "length of each rate and each probe")
	fs.DurationVar(&bf.timeout, "timeout", bench.DefaultTimeout, "how long after a step's last request its results may come")
	fs.DurationVar(&bf.maxP99, "max-p99", bench.DefaultMaxP99, "a rate whose p99 is above this is not sustainable")
	fs.DurationVar(&bf.warmup, "warmup", bench.DefaultWarmup, "warm-up of each system at 1000/s (0: none)")
	fs.DurationVar(&bf.ttl, "ttl", 0, "ttl of the load's stores and processes (not the preload's), to measure expiry")
	fs.IntVar(&bf.window, "window", bench.DefaultWindow, "requests in flight while preloading")
	fs.StringVar(&bf.mix, "mix", "store=1,retrieve=1,process=1", "op weights: store, retrieve, process, forget")
	fs.StringVar(&bf.phases, "phases", "wakesleep", "phases of requests: wakesleep (0.1 or 0.9) or uniform")
	fs.StringVar(&bf.memory, "memory", bench.DefaultMemory, "memory the load goes to")
	fs.IntVar(&bf.memories, "memories", 1, "spread the load over this many memories, <memory>-0 to <memory>-(n-1), to load several processes' partitions")
	fs.Uint64Var(&bf.seed, "seed", 1, "seed of vectors, phases and op order")
	fs.BoolVar(&bf.noEcho, "no-echo", false, "skip the JetStream echo floor")
	fs.BoolVar(&bf.keepResults, "keep-results", false, "bind a stream to the results, as a user who keeps them does (pelm then acks only stored results)")
	fs.BoolVar(&bf.quiet, "quiet", false, "no progress on stderr")
	fs.StringVar(&bf.jsonOut, "json", "bench.json", "file for every figure as JSON (empty: none)")
	fs.StringVar(&bf.plotOut, "plot", "bench.png", "file for the latency/throughput plot as PNG (empty: none)")
	fs.StringVar(&bf.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(&bf.memProfile, "memprofile", "", "write a heap profile (with allocations) at the end to this file")
	fs.StringVar(&bf.echoPrefix, "echo-prefix", bench.DefaultEchoPrefix, "subject prefix of the echo floor's stream")
	fs.StringVar(&bf.inboxPrefix, "inbox", "_INBOX.pelmbench", "prefix of the run's Pelm-Reply-To (pelm's --reply-allow must admit it)")
	return fs, sf, bf
}

func setDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	_ = f.Value.Set(value)
	f.DefValue = value
}

func (bf *benchFlags) config(sf *serveFlags, cfg processor.Config) (bench.Config, error) {
	mix, err := bench.ParseMix(bf.mix)
	if err != nil {
		return bench.Config{}, fmt.Errorf("--mix: %w", err)
	}
	phases, err := bench.ParsePhases(bf.phases)
	if err != nil {
		return bench.Config{}, fmt.Errorf("--phases: %w", err)
	}
	rates := []float64{}
	for s := range strings.SplitSeq(bf.rates, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return bench.Config{}, fmt.Errorf("--rates: %q is not a positive number", s)
		}
		rates = append(rates, v)
	}
	if len(rates) == 0 && !bf.findMax {
		return bench.Config{}, errors.New("--rates is empty and --find-max is not set: nothing to measure")
	}
	if bf.duration <= 0 || bf.timeout <= 0 || bf.maxP99 <= 0 || bf.window < 1 || bf.preload < 0 {
		return bench.Config{}, errors.New("--duration, --timeout, --max-p99 and --window must be positive, --preload not negative")
	}
	c := bench.Config{
		Prefix: sf.prefix, Memory: bf.memory, Memories: bf.memories, EchoPrefix: bf.echoPrefix, Inbox: bf.inboxPrefix, KeepResults: bf.keepResults,
		Dim: sf.dim, Preload: bf.preload, Rates: rates, FindMax: bf.findMax, TTL: bf.ttl,
		Duration: bf.duration, Timeout: bf.timeout, MaxP99: bf.maxP99, Window: bf.window, Warmup: bf.warmup,
		Mix: mix, Phases: phases, Seed: bf.seed, Batch: cfg.Batch,
		Settings: map[string]any{
			"nats_url": sf.natsURL, "in_process": sf.natsURL == "", "nats_sync": sf.natsSync,
			"dim": sf.dim, "capacity": sf.capacity, "eviction": sf.eviction,
			"batch_max": sf.batchMax, "batch_wait": sf.batchWait.String(),
			"tolerance": sf.tolerance, "top_k": sf.topK, "filter_adaptive": sf.filterAdaptive,
			"gomaxprocs": runtime.GOMAXPROCS(0),
		},
	}
	if bf.preload == 0 {
		c.Preload = bench.NoPreload
	}
	if bf.warmup <= 0 {
		c.Warmup = -1
	}
	return c, c.Validate()
}

// benchCmd runs `pelm bench`: by default an embedded NATS server and a
// processor in this process, or, with --nats-url, a running deployment.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, sf, bf := benchFlagSet(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(sf.logLevel, sf.logFormat, stderr)
	if err != nil {
		return err
	}
	pcfg, err := sf.config(log)
	if err != nil {
		return err
	}
	cfg, err := bf.config(sf, pcfg)
	if err != nil {
		return err
	}
	if !bf.quiet {
		cfg.Progress = stderr
	}

	url := sf.natsURL
	var connOpts []nats.Option // how the processor and the echo connect
	if url == "" {
		dir := sf.dataDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "pelm-bench-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		enc, err := sf.encryption()
		if err != nil {
			return err
		}
		ns, err := startEmbedded(sf.natsListen, dir, sf.natsSync, sf.conn.token, enc)
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		url = ns.ClientURL()
		connOpts = append(connOpts, nats.InProcessServer(ns))
	}
	secure, err := sf.conn.options()
	if err != nil {
		return err
	}
	connect := func(name string, opts ...nats.Option) (*nats.Conn, error) {
		opts = append(append(opts, secure...), nats.Name(name), nats.MaxReconnects(-1))
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
		}
		return nc, nil
	}
	load, err := connect("pelm-bench-load") // over TCP, as a client program
	if err != nil {
		return err
	}
	defer load.Close()
	var echo *nats.Conn
	if !bf.noEcho {
		if echo, err = connect("pelm-bench-echo", connOpts...); err != nil {
			return err
		}
		defer echo.Close()
	}

	if bf.cpuProfile != "" {
		f, err := os.Create(bf.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	var wg sync.WaitGroup
	if sf.natsURL == "" {
		pc, err := connect("pelm-processor", connOpts...)
		if err != nil {
			return err
		}
		p, err := processor.New(pc, pcfg)
		if err != nil {
			pc.Close()
			return err
		}
		pctx, stop := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		wg.Go(func() { runErr <- p.Run(pctx) })
		defer func() {
			stop()
			wg.Wait()
			drainAndWait(pc, 10*time.Second)
		}()
		if err := waitConsumer(ctx, load, runErr); err != nil {
			return err
		}
	}

	rep, err := bench.Run(ctx, load, echo, cfg)
	if err != nil {
		return err
	}
	if bf.memProfile != "" {
		runtime.GC()
		if err := writeFile(bf.memProfile, func(w io.Writer) error { return pprof.Lookup("allocs").WriteTo(w, 0) }); err != nil {
			return err
		}
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if bf.jsonOut != "" {
		if err := writeFile(bf.jsonOut, rep.WriteJSON); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "figures: %s\n", bf.jsonOut)
	}
	if bf.plotOut != "" {
		if err := writeFile(bf.plotOut, rep.WritePlot); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "plot: %s\n", bf.plotOut)
	}
	return nil
}

// waitConsumer waits until the in-process processor has created its
// consumer, or returns the error Run returned.
func waitConsumer(ctx context.Context, nc *nats.Conn, runErr <-chan error) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if processor.Serving(ctx, js) {
			return nil
		}
		select {
		case err := <-runErr:
			return fmt.Errorf("processor: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("the processor did not start within 10s")
		}
	}
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
