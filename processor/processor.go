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
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/wire"
	"github.com/rs/zerolog"
)

// Processor consumes requests from JetStream and publishes their results.
// Run owns it: all memory state lives on Run's batch goroutine.
type Processor struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log zerolog.Logger

	reqPrefix, resPrefix, dlqPrefix string
	rules                           wire.ReplyRules
	defaults                        wire.Defaults

	mems  memories
	caps  *captures      // which result subjects a stream keeps
	store *durable.Store // the journal, the state, replays (internal/durable)
	stale bool           // the memories may hold effects that are not durable: restore before the next batch

	restored  RestoreInfo
	metrics   *promMetrics // nil without a Registerer
	ready     atomic.Bool  // restored, recovered and consuming
	pullErr   error        // why pulling stopped; read after the pull goroutine is done
	maxResult int          // the largest result body the server takes

	// batch scratch, reused
	slots      []slot
	seen       map[uint64]int // stream sequences of the batch
	entries    []durable.Entry
	expired    []expiredItem // items expired by the batch
	expiredIDs []string
	mdec       *wire.Decoder
	renc       *wire.ResultEncoder
	pubMsg     nats.Msg
	pubHdr     resultHeader

	stats *statsWindow
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
		rules:    rules,
		defaults: wire.Defaults{Tolerance: cfg.Tolerance, TopK: cfg.TopK},
		mems:     newMemories(cfg),
		caps:     newCaptures(js),
		store: durable.New(nc, js, durable.Config{Prefix: cfg.Prefix, Logger: cfg.Logger,
			// A stale copy of a request can sit in the pull buffer, which
			// holds at most the prefetch.
			RetireAfter: 4 * cfg.Batch.MaxSize, Replicas: cfg.Replicas}),
		mdec:   wire.NewDecoder(),
		renc:   wire.NewResultEncoder(),
		pubHdr: newResultHeader(),
		stats:  newStatsWindow(),
		seen:   map[uint64]int{},
	}
	if cfg.Registerer != nil {
		if p.metrics, err = newMetrics(cfg.Registerer, p.Ready, p.store.Failures, cfg.MaxBytes); err != nil {
			return nil, fmt.Errorf("%w: metrics: %w", ErrConfig, err)
		}
	}
	p.maxResult = int(nc.MaxPayload()) - 1024 // room for the headers
	p.pubMsg.Header = p.pubHdr.h
	return p, nil
}

// Run creates or binds the streams and the consumer, rebuilds every memory
// from the state stream, then processes requests until ctx is done. On
// cancellation it stops pulling, finishes the messages it already holds,
// publishes their results, acks them and returns nil. It returns an error when setup or the restore fails, or when
// consuming stops by itself (the consumer deleted, the connection closed).
func (p *Processor) Run(ctx context.Context) error {
	cons, err := p.setup(ctx)
	if err != nil {
		return err
	}
	stopCaptures, err := p.watchCaptures(ctx)
	if err != nil {
		return err
	}
	defer stopCaptures()
	if err := p.restore(); err != nil {
		return err
	}
	// A recovery runs to its end even when a stop comes meanwhile: stopped
	// halfway, it would look like a recovery that died to the next start.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recoveryTimeout)
	err = p.recoverPending(rctx, cons, p.handleBatch)
	cancel()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		p.log.Info().Msg("processor stopped before consuming")
		return nil
	}
	adv, err := p.watchMaxDeliveries(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	defer func() { _ = adv.Unsubscribe() }()
	b, err := batcher.New[jetstream.Msg](p.cfg.Batch)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	batchMax := p.cfg.Batch.MaxSize
	// Short pull requests with frequent heartbeats: when the server goes
	// away, the iterator notices within a couple of seconds and pulls anew
	// from the server it reconnects to, rather than after half a minute.
	it, err := cons.Messages(jetstream.PullMaxMessages(2*batchMax),
		jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return fmt.Errorf("%w: consume: %w", ErrSetup, err)
	}
	p.log.Info().Str("prefix", p.cfg.Prefix).Int("dim", p.mems.defaults.Dim).Int("batch_max", batchMax).
		Dur("batch_wait", p.cfg.Batch.MaxWait).Msg("processor started")

	in := make(chan jetstream.Msg, batchMax)
	var wg sync.WaitGroup
	wg.Go(func() { p.pull(cons, it, in) })
	stop := context.AfterFunc(ctx, func() { p.ready.Store(false); it.Drain() }) // stop pulling; Next still returns what is buffered
	defer stop()
	p.metrics.memories(p.mems.order, p.mems.reserved)
	p.ready.Store(true)
	defer p.ready.Store(false)

	statsCtx, cancelStats := context.WithCancel(context.Background())
	wg.Go(func() { p.statsLoop(statsCtx, cons) })

	_ = b.Run(context.Background(), in, p.handleBatch) // returns once pull closes in
	var runErr error
	if ctx.Err() == nil {
		// The iterator closed by itself: the consumer was deleted or the
		// connection closed for good. Say so rather than stop quietly.
		runErr = fmt.Errorf("processor: consuming stopped: %w", p.pullErr)
	}
	cancelStats()
	wg.Wait()
	if err := p.nc.FlushTimeout(flushTimeout); err != nil {
		p.log.Warn().Err(err).Msg("final flush")
	} else {
		p.store.Close()
	}
	p.log.Info().Msg("processor stopped")
	return runErr
}

// idleCheck is how long the pull loop waits for a message before it checks
// that its consumer still exists.
const idleCheck = 5 * time.Second

// pull moves messages from the iterator to the batcher until the iterator
// is closed.
func (p *Processor) pull(cons jetstream.Consumer, it jetstream.MessagesContext, in chan<- jetstream.Msg) {
	defer close(in)
	missing := 0 // consecutive checks that found no consumer
	idle := time.Duration(0)
	wait := jetstream.NextMaxWait(idleTick) // built once: it allocates
	for {
		msg, err := it.Next(wait)
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			// Idle: let the batch loop do its housekeeping.
			select {
			case in <- nil: // an idle tick
			default:
			}
			if idle += idleTick; idle < idleCheck && errors.Is(err, nats.ErrTimeout) {
				continue
			}
			idle = 0
			// Idle a while, or the server went quiet: make sure there is
			// still a consumer to wait on. A deletion is not always
			// announced to a waiting iterator.
			ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
			_, err := cons.Info(ctx)
			cancel()
			if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				missing = 0
				continue
			}
			// Twice in a row, a check apart: a server that has just
			// restarted may not have loaded its consumers yet.
			if missing++; missing == 2 {
				p.pullErr = err
				return
			}
			continue
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if p.pullErr == nil {
				p.pullErr = err
			}
			return
		}
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrConnectionClosed) {
			p.pullErr = err
			return
		}
		if err != nil {
			// Heartbeat loss and similar: the iterator re-issues its pulls.
			p.log.Warn().Err(err).Msg("pull")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		idle = 0
		in <- msg
	}
}

// idleTick is how often an idle pull loop hands the batch loop a tick.
const idleTick = 250 * time.Millisecond

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

// Ready reports whether the processor is serving: its streams and consumer
// are there, its memories restored, and it is connected to NATS.
func (p *Processor) Ready() bool { return p.ready.Load() && p.nc.IsConnected() }

func (p *Processor) statsLoop(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(p.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if p.metrics != nil {
				ictx, cancel := context.WithTimeout(ctx, apiTimeout)
				if ci, err := cons.Info(ictx); err == nil {
					p.metrics.pending.Set(float64(ci.NumPending))
				}
				cancel()
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

// Stats returns the figures of the current window and starts a new one, as
// each publication to <prefix>.stats does: a publication after a call
// covers only what came after it. It is for a caller that owns the
// processor's stats, such as the bench tool's in-process runs.
func (p *Processor) Stats() wire.Stats { return p.stats.snapshot(time.Now()) }

// setup creates the streams and the consumer when they are missing and
// uses them as they are when they exist.
func (p *Processor) setup(ctx context.Context) (jetstream.Consumer, error) {
	streams := []jetstream.StreamConfig{
		{
			Name: wire.RequestsStream, Subjects: []string{p.reqPrefix + ">"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Duplicates: 2 * time.Minute,
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
			return nil, fmt.Errorf("%w: stream %s: %w", ErrSetup, sc.Name, err)
		}
		if _, err := p.js.CreateStream(ctx, sc); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("%w: create stream %s: %w", ErrSetup, sc.Name, err)
		}
		p.log.Info().Str("stream", sc.Name).Msg("stream created")
	}
	if err := p.store.Setup(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	cons, err := p.js.Consumer(ctx, wire.RequestsStream, ConsumerName)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("%w: consumer %s: %w", ErrSetup, ConsumerName, err)
	}
	cons, err = p.js.CreateConsumer(ctx, wire.RequestsStream, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.cfg.AckWait,
		MaxDeliver:    p.cfg.MaxDeliver,
		MaxAckPending: 4 * p.cfg.Batch.MaxSize,
		FilterSubject: p.reqPrefix + ">",
		Replicas:      max(1, p.cfg.Replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: create consumer %s: %w", ErrSetup, ConsumerName, err)
	}
	p.log.Info().Str("consumer", ConsumerName).Msg("consumer created")
	return cons, nil
}
