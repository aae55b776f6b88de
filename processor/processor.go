package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/wire"
	"github.com/rs/zerolog"
)

// Processor consumes requests from JetStream and publishes their results.
// Run owns it. The memories fall into partitions (by a hash of their
// name); each partition this process owns runs on a goroutine of its own
// (partition.go), and ownership moves between the processes on one prefix
// (owner.go).
type Processor struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log zerolog.Logger

	reqPrefix, resPrefix, dlqPrefix string
	partPrefix                      string // "<prefix>.part.": where the stream files requests, by partition
	rules                           wire.ReplyRules
	defaults                        wire.Defaults

	caps      *captures    // which result subjects a stream keeps
	budget    *budget      // what all memories of the process may hold
	metrics   *promMetrics // nil without a Registerer
	stats     *statsWindow
	ready     atomic.Bool // set up, and serving or standing by
	maxResult int         // the largest result body the server takes

	parts        int           // partitions of the memories, as the requests stream files them
	own          *owner        // membership, ownership and the lease (owner.go)
	pastFailures atomic.Uint64 // failed commits of partitions no longer served
	matEvery     time.Duration // a test's materialising period; 0: the store's

	mu      sync.Mutex
	running map[int]*partition // the partitions this process serves
	all     []*partition       // every partition, for Restore and Snapshot
}

// New checks cfg and prepares a processor on connection nc. It does not
// touch the server until Run.
func New(nc *nats.Conn, cfg Config) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("processor: jetstream: %w", err)
	}
	rules, _ := wire.NewReplyRules(cfg.Prefix, cfg.ReplyAllow) // checked by Validate
	p := &Processor{
		cfg: cfg, nc: nc, js: js, log: cfg.Logger,
		reqPrefix: cfg.Prefix + ".req.", resPrefix: cfg.Prefix + ".res.", dlqPrefix: cfg.Prefix + ".dlq.",
		partPrefix: cfg.Prefix + ".part.",
		rules:      rules,
		defaults:   wire.Defaults{Tolerance: cfg.Tolerance, TopK: cfg.TopK},
		caps:       newCaptures(js),
		budget:     &budget{max: cfg.MaxMemories, maxBytes: cfg.MaxBytes},
		stats:      newStatsWindow(),
		running:    map[int]*partition{},
	}
	if cfg.Registerer != nil {
		if p.metrics, err = newMetrics(cfg.Registerer, p.Ready, p.failures, cfg.MaxBytes); err != nil {
			return nil, fmt.Errorf("%w: metrics: %w", ErrConfig, err)
		}
	}
	p.maxResult = int(nc.MaxPayload()) - 1024 // room for the headers
	return p, nil
}

// Run creates or binds the streams, joins the processes serving the
// prefix, and serves the partitions it is given until ctx is done: for
// each, it fences off the previous owner, rebuilds the partition's
// memories, runs the requests the previous owner held, then consumes. On
// cancellation it hands its partitions back (each finishes the messages it
// holds, publishes their results and acks them) and returns nil. It
// returns an error when setup fails or the connection closes for good.
func (p *Processor) Run(ctx context.Context) error {
	if err := p.setupRetrying(ctx); err != nil {
		return err
	}
	stopCaptures, err := p.watchCaptures(ctx)
	if err != nil {
		return err
	}
	defer stopCaptures()
	adv, err := p.watchMaxDeliveries(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	defer func() { _ = adv.Unsubscribe() }()
	p.own, err = newOwner(ctx, p)
	if err != nil {
		return err
	}
	p.log.Info().Str("prefix", p.cfg.Prefix).Int("partitions", p.parts).Str("member", p.own.id).
		Int("dim", p.cfg.Memory.Dim).Int("batch_max", p.cfg.Batch.MaxSize).Dur("batch_wait", p.cfg.Batch.MaxWait).
		Msg("processor started")
	p.metrics.memories(nil, p.budget.total())
	var wg sync.WaitGroup
	statsCtx, cancelStats := context.WithCancel(context.Background())
	wg.Go(func() { p.statsLoop(statsCtx) })
	p.ready.Store(true)
	runErr := p.own.run(ctx) // returns once every partition is handed back
	p.ready.Store(false)
	cancelStats()
	wg.Wait()
	p.log.Info().Msg("processor stopped")
	return runErr
}

// watchCaptures lists which subjects streams capture, and keeps the list
// up to date until the returned function is called.
func (p *Processor) watchCaptures(ctx context.Context) (stop func(), err error) {
	sub, err := p.caps.watch(p.nc)
	if err != nil {
		return nil, fmt.Errorf("%w: stream advisories: %w", ErrSetup, err)
	}
	lctx, cancel := context.WithTimeout(ctx, apiTimeout)
	if err := p.caps.refresh(lctx); err != nil {
		p.log.Warn().Err(err).Msg("list streams: until it works, no result waits for a stream to store it")
	}
	cancel()
	lctx, cancel = context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		p.caps.loop(lctx, func(err error) { p.log.Warn().Err(err).Msg("list streams") })
	})
	return func() {
		_ = sub.Unsubscribe()
		cancel()
		wg.Wait()
	}, nil
}

// Ready reports whether the processor is serving: its streams are there,
// it is connected to NATS and holds its lease, and every partition it owns
// is restored and consuming (a process that owns none stands by, ready).
func (p *Processor) Ready() bool {
	if !p.ready.Load() || !p.nc.IsConnected() || !p.own.valid() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	serving := 0
	for _, pt := range p.running {
		if pt.serving.Load() {
			serving++
		}
	}
	return int64(serving) >= p.own.wanted.Load() && p.own.wanted.Load() >= 0
}

// failures counts the materialising commits that failed, in every
// partition served.
func (p *Processor) failures() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, pt := range p.running {
		n += pt.store.Failures()
	}
	return n + p.pastFailures.Load()
}

func (p *Processor) statsLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if p.metrics != nil {
				p.metrics.pending.Set(float64(p.pending(ctx)))
				p.own.observe(p.metrics)
			}
			st := p.stats.snapshot(now)
			data, err := wire.EncodeStats(st, p.cfg.StatsJSON)
			if err != nil {
				p.log.Error().Err(err).Msg("encode stats")
				continue
			}
			if err := p.nc.Publish(p.cfg.Prefix+".stats", data); err != nil {
				p.log.Warn().Err(err).Msg("publish stats")
			}
		}
	}
}

// pending is how many requests wait, undelivered, in the partitions this
// process serves.
func (p *Processor) pending(ctx context.Context) uint64 {
	p.mu.Lock()
	conses := make([]jetstream.Consumer, 0, len(p.running))
	for _, pt := range p.running {
		if c := pt.consumer(); c != nil {
			conses = append(conses, c)
		}
	}
	p.mu.Unlock()
	var n uint64
	for _, c := range conses {
		ictx, cancel := context.WithTimeout(ctx, apiTimeout)
		if ci, err := c.Info(ictx); err == nil {
			n += ci.NumPending
		}
		cancel()
	}
	return n
}

// Stats returns the figures of the current window and starts a new one, as
// each publication to <prefix>.stats does: a publication after a call
// covers only what came after it. It is for a caller that owns the
// processor's stats, such as the bench tool's in-process runs.
func (p *Processor) Stats() wire.Stats { return p.stats.snapshot(time.Now()) }

// setup creates the streams when they are missing and uses them as they
// are when they exist. The requests stream files each request under its
// partition with a subject transform, <prefix>.req.<memory>.<op> to
// <prefix>.part.<n>.<memory>.<op>, n = partition(memory): a stream made by
// a version before partitions gets the transform here, once the work of
// that version's processor is known finished (migrate.go).
func (p *Processor) setup(ctx context.Context) error {
	streams := []jetstream.StreamConfig{
		{
			Name: wire.RequestsStream, Subjects: []string{p.reqPrefix + ">"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Duplicates:       2 * time.Minute,
			SubjectTransform: p.transform(p.cfg.Partitions),
		},
		{
			Name: wire.DLQStream, Subjects: []string{p.dlqPrefix + ">"},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: 7 * 24 * time.Hour,
		},
	}
	for _, sc := range streams {
		sc.Replicas = max(1, p.cfg.Replicas)
		if _, err := p.js.Stream(ctx, sc.Name); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: stream %s: %w", ErrSetup, sc.Name, err)
		}
		if _, err := p.js.CreateStream(ctx, sc); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("%w: create stream %s: %w", ErrSetup, sc.Name, err)
		}
		p.log.Info().Str("stream", sc.Name).Msg("stream created")
	}
	if err := durable.New(p.nc, p.js, durable.Config{Prefix: p.cfg.Prefix, Replicas: p.cfg.Replicas}).Setup(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if err := p.migrate(ctx); err != nil {
		return err
	}
	return nil
}

// setupRetrying runs setup, again while it fails for a while for want of
// an answer: on a cluster that has just started, or while several
// processes make the same streams at once, the JetStream API can time out
// for seconds. Other errors (permissions, an R3 stream on one server, an
// earlier version at work) end it at once.
func (p *Processor) setupRetrying(ctx context.Context) error {
	deadline := time.Now().Add(setupPatience)
	for {
		sctx, cancel := context.WithTimeout(ctx, 2*apiTimeout)
		err := p.setup(sctx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		p.log.Warn().Err(err).Msg("setup; trying again")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// setupPatience bounds setupRetrying.
const setupPatience = time.Minute

// transient reports whether a JetStream call failed for want of an answer
// rather than by a refusal.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 // JetStream temporarily unavailable
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}
