package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/rs/zerolog"
)

type serveFlags struct {
	natsURL, natsListen, dataDir string
	natsSync                     string
	httpListen                   string
	pprof                        bool
	prefix                       string
	dim, capacity                int
	eviction                     string
	tolerance                    float64
	topK                         int
	filterThreshold              float64
	filterAdaptive               bool
	batchMax                     int
	batchWait                    time.Duration
	statsInterval                time.Duration
	statsJSON                    bool
	replyAllow                   string
	maxMemories                  int
	maxBytes                     byteSize
	replicas                     int
	partitions                   int
	lease                        time.Duration
	ackWait                      time.Duration
	maxDeliver                   int
	logLevel, logFormat          string
	encKeyFile, encCipher        string
	conn                         connFlags
}

func serveFlagSet(stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("pelm serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.natsURL, "nats-url", "", "NATS server to use; empty starts an embedded one (env NATS_URL)")
	fs.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS server listens for other programs")
	fs.StringVar(&f.dataDir, "data-dir", "./pelm-data", "where the embedded NATS server stores its JetStream data")
	fs.StringVar(&f.httpListen, "http-listen", ":8080", "where /healthz, /readyz and /metrics are served; empty disables them")
	fs.BoolVar(&f.pprof, "pprof", false, "also serve net/http/pprof under /debug/pprof/ on --http-listen")
	fs.StringVar(&f.encKeyFile, "nats-encryption-key-file", "", "encrypt the embedded server's JetStream store at rest with the key in this file (env PELM_NATS_ENCRYPTION_KEY holds the key itself)")
	fs.StringVar(&f.encCipher, "nats-encryption-cipher", "chacha", "cipher of the encrypted store: chacha or aes")
	fs.StringVar(&f.natsSync, "nats-sync", "always", "when the embedded NATS server syncs to disk: always (before it acks) or an interval such as 2m")
	fs.StringVar(&f.prefix, "prefix", processor.DefaultPrefix, "subject prefix")
	fs.IntVar(&f.dim, "dim", pelm.DefaultDim, "vector dimension of every memory (1 to 4096)")
	fs.IntVar(&f.capacity, "capacity", pelm.DefaultCapacity, "items per memory (1 to 1000000)")
	fs.StringVar(&f.eviction, "eviction", "fifo", "which item makes room in a full memory: fifo or confidence")
	fs.Float64Var(&f.tolerance, "tolerance", processor.DefaultTolerance, "phase tolerance of requests that give none (0 to 1)")
	fs.IntVar(&f.topK, "top-k", processor.DefaultTopK, "matches of requests that give no top_k (1 to 1000)")
	fs.Float64Var(&f.filterThreshold, "filter-threshold", filter.DefaultThreshold, "initial moral threshold (0.30 to 0.90)")
	fs.BoolVar(&f.filterAdaptive, "filter-adaptive", true, "adapt the threshold after every decision")
	fs.IntVar(&f.batchMax, "batch-max", 256, "most requests in one batch")
	fs.DurationVar(&f.batchWait, "batch-wait", time.Millisecond, "longest wait for a batch to fill; 0 runs what is ready at once")
	fs.DurationVar(&f.statsInterval, "stats-interval", processor.DefaultStatsInterval, "how often stats go to <prefix>.stats")
	fs.BoolVar(&f.statsJSON, "stats-json", false, "publish stats as JSON instead of msgpack")
	fs.StringVar(&f.replyAllow, "reply-allow", ">", "comma-separated subject patterns a Pelm-Reply-To must match")
	fs.IntVar(&f.replicas, "replicas", 1, "replica count of every stream and consumer pelm creates (3 on a JetStream cluster; an existing stream is used as it is)")
	fs.IntVar(&f.partitions, "partitions", processor.DefaultPartitions, "partitions of the memories in a new requests stream (an existing one keeps its own); the processes on one prefix share them")
	fs.DurationVar(&f.lease, "lease", processor.DefaultLease, "how long a process that stopped renewing its membership (killed, paused, cut off) keeps its partitions before the others take them over")
	fs.IntVar(&f.maxMemories, "max-memories", processor.DefaultMaxMemories, "most memories created on demand")
	f.maxBytes.n = defaultMaxBytes()
	fs.Var(&f.maxBytes, "max-bytes", "RAM the memories may reserve, each at its full capacity (0: no bound); default 60% of the container's or the machine's memory")
	fs.DurationVar(&f.ackWait, "ack-wait", processor.DefaultAckWait, "AckWait of the consumers pelm creates (each partition's owner makes its own when it takes the partition)")
	fs.IntVar(&f.maxDeliver, "max-deliver", processor.DefaultMaxDeliver, "deliveries of a request before it goes to the DLQ, for the consumers pelm creates")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "json or console")
	f.conn.register(fs)
	return fs, f
}

func (f *serveFlags) config(log zerolog.Logger) (processor.Config, error) {
	ev, err := pelm.ParseEviction(f.eviction)
	if err != nil {
		return processor.Config{}, err
	}
	cfg := processor.Config{
		Prefix:        f.prefix,
		Memory:        pelm.Config{Dim: f.dim, Capacity: f.capacity, Eviction: ev},
		Filter:        filter.Config{Threshold: f.filterThreshold, Fixed: !f.filterAdaptive},
		Batch:         batcher.Config{MaxSize: f.batchMax, MaxWait: f.batchWait},
		Tolerance:     f.tolerance,
		TopK:          f.topK,
		StatsInterval: f.statsInterval,
		StatsJSON:     f.statsJSON,
		MaxMemories:   f.maxMemories,
		MaxBytes:      f.maxBytes.n,
		Replicas:      f.replicas,
		Partitions:    f.partitions,
		Lease:         f.lease,
		AckWait:       f.ackWait,
		MaxDeliver:    f.maxDeliver,
		Logger:        log,
	}
	// Flags say what they mean: 0 is a value here, not "the default", and
	// no value stands for another.
	if f.tolerance < 0 || f.tolerance > 1 {
		return cfg, fmt.Errorf("--tolerance %v: want 0 to 1", f.tolerance)
	}
	if f.filterThreshold < filter.MinThreshold || f.filterThreshold > filter.MaxThreshold {
		return cfg, fmt.Errorf("--filter-threshold %v: want %v to %v", f.filterThreshold, filter.MinThreshold, filter.MaxThreshold)
	}
	if _, _, err := parseSync(f.natsSync); err != nil {
		return cfg, err
	}
	if f.tolerance == 0 {
		cfg.Tolerance = processor.ExactPhase
	}
	if f.batchWait == 0 {
		cfg.Batch.MaxWait = batcher.NoWait
	}
	if f.dim < 1 || f.capacity < 1 || f.batchMax < 1 || f.topK < 1 || f.maxMemories < 1 || f.statsInterval <= 0 || f.ackWait <= 0 || f.maxDeliver < 1 {
		return cfg, errors.New("--dim, --capacity, --batch-max, --top-k, --max-memories, --stats-interval, --ack-wait and --max-deliver must be positive")
	}
	for _, p := range strings.Split(f.replyAllow, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.ReplyAllow = append(cfg.ReplyAllow, p)
		}
	}
	if cfg.ReplyAllow == nil {
		return cfg, errors.New("--reply-allow: no pattern given")
	}
	return cfg, cfg.Validate()
}

func newLogger(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level: %w", err)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs, f := serveFlagSet(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return err
	}
	cfg, err := f.config(log)
	if err != nil {
		return err
	}
	if cfg.Hook, err = testHook(os.Getenv("PELM_TEST_CRASH"), os.Getenv("PELM_TEST_DELAY"), os.Getenv("PELM_TEST_POISON"), os.Getenv("PELM_TEST_STOP")); err != nil {
		return err
	}

	var ns *server.Server
	opts, err := f.conn.options()
	if err != nil {
		return err
	}
	opts = append(opts, nats.Name("pelm-processor"), nats.MaxReconnects(-1))
	url := f.natsURL
	enc, err := f.encryption()
	if err != nil {
		return err
	}
	if url == "" {
		ns, err = startEmbedded(f.natsListen, f.dataDir, f.natsSync, f.conn.token, enc)
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
			log.Info().Msg("embedded nats server stopped")
		}()
		opts = append(opts, nats.InProcessServer(ns))
		log.Info().Str("listen", ns.ClientURL()).Str("data_dir", f.dataDir).Bool("encrypted", enc.key != "").
			Msg("embedded nats server started")
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	reg := newRegistry()
	cfg.Registerer = reg
	p, err := processor.New(nc, cfg)
	if err != nil {
		nc.Close()
		return err
	}
	if f.httpListen != "" {
		stopHTTP, err := serveHTTP(f.httpListen, reg, p.Ready, f.pprof, log)
		if err != nil {
			nc.Close()
			return fmt.Errorf("--http-listen %q: %w", f.httpListen, err)
		}
		defer stopHTTP()
	}
	runErr := p.Run(ctx)
	drainAndWait(nc, 10*time.Second)
	return runErr
}

// drainAndWait drains nc (flushing what is buffered) and waits for it to close.
func drainAndWait(nc *nats.Conn, timeout time.Duration) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(timeout):
		nc.Close()
	}
}

// encryption is how the embedded server encrypts its store: no key, none.
type encryption struct {
	key    string
	cipher server.StoreCipher
}

// encryption reads the key from PELM_NATS_ENCRYPTION_KEY or the key file.
// The key is never logged, and no error quotes it.
func (f *serveFlags) encryption() (encryption, error) {
	var e encryption
	key := os.Getenv("PELM_NATS_ENCRYPTION_KEY")
	if f.encKeyFile != "" {
		b, err := os.ReadFile(f.encKeyFile)
		if err != nil {
			return e, fmt.Errorf("--nats-encryption-key-file: %w", err)
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return e, fmt.Errorf("--nats-encryption-key-file %s is empty", f.encKeyFile)
		}
	}
	if key == "" {
		return e, nil
	}
	if f.natsURL != "" {
		return e, errors.New("an encryption key is for the embedded server: with --nats-url, encrypt in that server's configuration (jetstream { cipher, key })")
	}
	switch f.encCipher {
	case "chacha":
		e.cipher = server.ChaCha
	case "aes":
		e.cipher = server.AES
	default:
		return e, fmt.Errorf("--nats-encryption-cipher %q: want chacha or aes", f.encCipher)
	}
	e.key = key
	return e, nil
}

// startEmbedded runs a NATS server with JetStream inside this process.
func startEmbedded(listen, dataDir, sync, token string, enc encryption) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: bad port", listen)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	opts := &server.Options{
		ServerName: "pelm-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dataDir,
		NoSigs:     true, // pelm handles SIGINT/SIGTERM itself
		// Bound to loopback unless --nats-listen says otherwise; with a
		// token, every client (the processor too) must present it.
		Authorization: token,

		JetStreamKey:    enc.key,
		JetStreamCipher: enc.cipher,
	}
	always, every, err := parseSync(sync)
	if err != nil {
		return nil, err
	}
	opts.SyncAlways, opts.SyncInterval = always, every
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats server did not start within 10s (is the port in use?)")
	}
	if err := checkStoreLoaded(ns, dataDir); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	return ns, nil
}

// checkStoreLoaded fails when streams of the data directory did not load:
// a store encrypted with another key (or none) cannot be read, and pelm
// must not create its streams anew over it.
func checkStoreLoaded(ns *server.Server, dataDir string) error {
	onDisk, _ := filepath.Glob(filepath.Join(dataDir, "jetstream", "*", "streams", "*"))
	jsz, err := ns.Jsz(nil)
	if err != nil {
		return fmt.Errorf("embedded nats server: %w", err)
	}
	if jsz.Streams < len(onDisk) {
		return fmt.Errorf("%d of the %d streams in --data-dir %s did not load: they were stored with another encryption key (--nats-encryption-key-file, PELM_NATS_ENCRYPTION_KEY) or with none; nothing was changed",
			len(onDisk)-jsz.Streams, len(onDisk), dataDir)
	}
	return nil
}

// parseSync reads --nats-sync: always, or how often to sync.
func parseSync(s string) (always bool, every time.Duration, err error) {
	if s == "always" {
		return true, 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return false, d, nil
	}
	return false, 0, fmt.Errorf("--nats-sync %q: want always or a positive duration such as 2m", s)
}
