package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/wire"
)

// partition is one share of the memories, served by one process at a time:
// its memories, its durable store, its consumer and its batch loop. Every
// field below the embedded Processor belongs to the partition's batch
// goroutine.
type partition struct {
	*Processor
	id       int    // 0 to parts-1; parts is the catch-all of subjects that name no memory
	subjects string // "<prefix>.part.<id>.": the prefix of its requests' stored subjects

	mems     memories
	store    *durable.Store // the journal, the state, replays (internal/durable)
	stale    bool           // the memories may hold effects that are not durable: restore before the next batch
	restored RestoreInfo
	pullErr  error // why pulling stopped; read after the pull goroutine is done

	cons    atomic.Pointer[jetstream.Consumer]
	serving atomic.Bool // restored, recovered and consuming
	lost    atomic.Bool // another process owns it now: write and publish nothing more
	term    uint64      // the lease under which it was taken (owner.term)

	backlog  [2]int       // journal records and epochs last reported to the metrics
	capCache captureCache // which result subjects a stream keeps, as this loop last looked

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
}

func (p *Processor) newPartition(id int) *partition {
	pt := &partition{
		Processor: p, id: id,
		subjects: p.partPrefix + strconv.Itoa(id) + ".",
		mems:     newMemories(p.cfg, p.budget),
		mdec:     wire.NewDecoder(),
		renc:     wire.NewResultEncoder(),
		pubHdr:   newResultHeader(),
		seen:     map[uint64]int{},
	}
	pt.pubMsg.Header = pt.pubHdr.h
	pt.store = durable.New(p.nc, p.js, durable.Config{Prefix: p.cfg.Prefix, Logger: p.log,
		// A stale copy of a request can sit in the pull buffer, which
		// holds at most the prefetch.
		RetireAfter: 4 * p.cfg.Batch.MaxSize, Replicas: p.cfg.Replicas,
		Partition: id, Owns: pt.owns, Valid: pt.valid})
	if p.matEvery > 0 {
		pt.store.SetMaterializeEvery(p.matEvery)
	}
	return pt
}

// owns reports whether a memory is in this partition.
func (pt *partition) owns(memory string) bool {
	return pt.id < pt.parts && durable.Partition(memory, pt.parts) == pt.id
}

// valid reports whether the process may still write and publish for the
// partition: it holds its lease and nobody has taken the partition over.
func (pt *partition) valid() bool {
	return !pt.lost.Load() && (pt.own == nil || pt.own.validFor(pt.term))
}

// catchAll reports whether this is the partition of the subjects that
// name no memory (<prefix>.req.x, <prefix>.req.a.b.c): only dead letters.
func (pt *partition) catchAll() bool { return pt.id == pt.parts }

func (pt *partition) consumer() jetstream.Consumer {
	if c := pt.cons.Load(); c != nil {
		return *c
	}
	return nil
}

// route parses a request's stored subject: <prefix>.part.<n>.<memory>.<op>,
// or, for a request stored before the stream partitioned them and for the
// catch-all, <prefix>.req.<memory>.<op>.
func (p *Processor) route(subject string) wire.Route {
	if rest, ok := strings.CutPrefix(subject, p.partPrefix); ok {
		if n, _, ok := strings.Cut(rest, "."); ok {
			return wire.ParseSubject(subject, subject[:len(p.partPrefix)+len(n)+1])
		}
	}
	return wire.ParseSubject(subject, p.reqPrefix)
}

// consumerName is the durable consumer of a partition for one ownership:
// a new owner deletes its predecessor's, whose pulls and acks then go
// nowhere.
func consumerName(id int, fence uint64) string {
	return ConsumerName + "-" + strconv.Itoa(id) + "-" + strconv.FormatUint(fence, 10)
}

// consumerPrefix is what the names of a partition's consumers begin with.
func consumerPrefix(id int) string { return ConsumerName + "-" + strconv.Itoa(id) + "-" }

// serve runs the partition, which this process has just been given, until
// ctx is done (it is handed back: finish the batch in hand, materialise)
// or it is lost (another process fenced it: stop at once, write nothing).
func (pt *partition) serve(ctx context.Context) error {
	defer pt.serving.Store(false)
	sctx, cancel := context.WithTimeout(ctx, stateTimeout)
	err := pt.store.Fence(sctx, pt.own.id)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	start := time.Now()
	defer pt.handBack()
	if err := pt.restore(); err != nil {
		return err
	}
	// A recovery runs to its end even when a stop comes meanwhile: stopped
	// halfway, it would look like a recovery that died to the next owner.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recoveryTimeout)
	cons, err := pt.takeConsumer(rctx)
	if err == nil {
		pt.cons.Store(&cons)
	}
	cancel()
	if err != nil {
		return err
	}
	if pt.lost.Load() || pt.store.Fenced() {
		return nil
	}
	pt.metrics.handover(time.Since(start))
	if ctx.Err() != nil {
		return nil
	}
	return pt.consume(ctx, cons)
}

// consume pulls and runs batches until ctx is done or the partition is
// lost.
func (pt *partition) consume(ctx context.Context, cons jetstream.Consumer) error {
	b, err := batcher.New[jetstream.Msg](pt.cfg.Batch)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	batchMax := pt.cfg.Batch.MaxSize
	// Short pull requests with frequent heartbeats: when the server goes
	// away, the iterator notices within a couple of seconds and pulls anew
	// from the server it reconnects to, rather than after half a minute. A
	// pull outlives a pause of its process by at most its expiry, which the
	// lease outlasts (owner.go).
	its, err := newIterator(func() (jetstream.MessagesContext, error) {
		return cons.Messages(jetstream.PullMaxMessages(2*batchMax),
			jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(time.Second))
	})
	if err != nil {
		return fmt.Errorf("%w: consume: %w", ErrSetup, err)
	}
	in := make(chan jetstream.Msg, batchMax)
	var wg sync.WaitGroup
	wg.Go(func() { pt.pull(cons, its, in) })
	stop := context.AfterFunc(ctx, func() { pt.serving.Store(false); its.drain() }) // stop pulling; Next still returns what is buffered
	defer stop()
	pt.metrics.memories(pt.mems.order, pt.budget.total())
	pt.serving.Store(true)
	_ = b.Run(context.Background(), in, func(batch []jetstream.Msg) {
		if !pt.valid() || pt.store.Fenced() {
			// Lost: leave every message to the new owner, and stop.
			pt.lose()
			its.stop()
			return
		}
		if pt.catchAll() {
			batch = pt.leaveValid(batch)
		}
		pt.handleBatch(batch)
	})
	wg.Wait()
	switch {
	case pt.lost.Load() || pt.store.Fenced():
		pt.lose()
		return nil
	case ctx.Err() == nil:
		// The iterator closed by itself: the consumer was deleted or the
		// connection closed for good. Say so rather than stop quietly.
		return fmt.Errorf("processor: partition %d: consuming stopped: %w", pt.id, pt.pullErr)
	}
	if err := pt.nc.FlushTimeout(flushTimeout); err != nil {
		pt.log.Warn().Err(err).Msg("final flush")
	} else if pt.valid() {
		pt.store.Close()
		pt.waitAcked(cons)
	}
	return nil
}

// waitAcked waits, a little, until the server has applied the acks the
// partition sent: a flush proves they arrived, not that the consumer
// counted them, and the next owner would run a request whose ack it has
// not counted again (replaying its result: a second copy of it).
func (pt *partition) waitAcked(cons jetstream.Consumer) {
	deadline := time.Now().Add(handBackWait)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		ci, err := cons.Info(ctx)
		cancel()
		if err != nil || ci.NumAckPending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handBackWait bounds waitAcked: a request nakked for a retry stays
// pending until it is redelivered.
const handBackWait = 2 * time.Second

// leaveValid keeps, of a catch-all batch, the requests whose subject names
// no memory and op. The others were stored before the stream partitioned
// requests: the owner of their memory's partition runs them when it takes
// the partition (recoverPending); until then they come back here later.
func (pt *partition) leaveValid(batch []jetstream.Msg) []jetstream.Msg {
	keep := batch[:0]
	for _, m := range batch {
		if m != nil && pt.route(m.Subject()).Err == nil {
			_ = m.NakWithDelay(retryAfter)
			continue
		}
		keep = append(keep, m)
	}
	return keep
}

// lose marks the partition as someone else's.
func (pt *partition) lose() {
	if !pt.lost.Swap(true) {
		pt.metrics.fenced()
		pt.log.Warn().Int("partition", pt.id).Msg("partition taken over by another process: stopped, writing nothing more")
	}
}

// handBack forgets the partition's memories: another process serves them
// now, and reports them.
func (pt *partition) handBack() {
	for _, m := range pt.mems.order {
		pt.metrics.dropped(m.name)
		pt.stats.dropped(m.name)
	}
	pt.mems.Reset()
	pt.reportBacklog(0, 0)
	pt.pastFailures.Add(pt.store.Failures())
	pt.metrics.memories(nil, pt.budget.total())
}

// reportBacklog moves the metrics' journal and epoch gauges by what this
// partition's backlog changed.
func (pt *partition) reportBacklog(records, epochs int) {
	pt.metrics.durability(records-pt.backlog[0], epochs-pt.backlog[1])
	pt.backlog = [2]int{records, epochs}
}

// pullExpiry is how long one pull request of a partition's iterator lives.
const pullExpiry = 5 * time.Second

// takeConsumer makes the partition's consumer for this ownership. Before
// that it runs, in stream order, the requests the previous owner held and
// had not acked (and the requests stored before the stream partitioned
// them), and deletes the previous owner's consumers, so that nothing it
// pulled can reach it any more and its acks go nowhere.
func (pt *partition) takeConsumer(ctx context.Context) (jetstream.Consumer, error) {
	// Each call gets a few seconds: while a stream has no leader (a node
	// lost) a call can wait as long as its context, and then the
	// partition tries again rather than hang.
	calls := &apiCalls{parent: ctx}
	defer calls.done()
	st, err := pt.js.Stream(calls.ctx(), wire.RequestsStream)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	var old []string
	from, upto := uint64(0), uint64(0) // what the previous owners may have held
	for name := range st.ConsumerNames(calls.ctx()).Name() {
		if !strings.HasPrefix(name, consumerPrefix(pt.id)) {
			continue
		}
		c, err := st.Consumer(calls.ctx(), name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: consumer %s: %w", ErrSetup, name, err)
		}
		ci := c.CachedInfo()
		old = append(old, name)
		if from == 0 || ci.AckFloor.Stream+1 < from {
			from = ci.AckFloor.Stream + 1
		}
		upto = max(upto, ci.Delivered.Stream)
	}
	// Deleted first: from here on the previous owner can pull nothing.
	for _, name := range old {
		if err := st.DeleteConsumer(calls.ctx(), name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("%w: delete consumer %s: %w", ErrSetup, name, err)
		}
	}
	if err := pt.recoverPending(calls, st, from, upto, pt.handleBatch); err != nil {
		return nil, err
	}
	filters := []string{pt.subjects + ">"}
	if pt.catchAll() {
		// Not "<prefix>.req.>": a work queue then keeps the partitioned
		// requests after their ack, as if the catch-all wanted them too.
		filters = []string{pt.reqPrefix + "*", pt.reqPrefix + "*.*", pt.reqPrefix + "*.*.>"}
	}
	name := consumerName(pt.id, pt.store.FenceSeq())
	cons, err := pt.js.CreateConsumer(calls.ctx(), wire.RequestsStream, jetstream.ConsumerConfig{
		Durable:        name,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        pt.cfg.AckWait,
		MaxDeliver:     pt.cfg.MaxDeliver,
		MaxAckPending:  4 * pt.cfg.Batch.MaxSize,
		FilterSubjects: filters,
		Replicas:       max(1, pt.cfg.Replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: create consumer %s: %w", ErrSetup, name, err)
	}
	return cons, nil
}

// Serving reports whether every partition of the requests stream has a
// consumer: some process serves each of them. It is how a program outside
// the processes (a test, the bench tool) knows they are ready.
func Serving(ctx context.Context, js jetstream.JetStream) bool {
	st, err := js.Stream(ctx, wire.RequestsStream)
	if err != nil {
		return false
	}
	served := map[string]bool{}
	for name := range st.ConsumerNames(ctx).Name() {
		if rest, ok := strings.CutPrefix(name, ConsumerName+"-"); ok {
			if k, _, ok := strings.Cut(rest, "-"); ok {
				served[k] = true
			}
		}
	}
	tr := st.CachedInfo().Config.SubjectTransform
	if tr == nil {
		return false
	}
	_, rest, _ := strings.Cut(tr.Destination, "{{partition(")
	num, _, _ := strings.Cut(rest, ",")
	n, err := strconv.Atoi(num)
	if err != nil {
		return false
	}
	for k := 0; k <= n; k++ {
		if !served[strconv.Itoa(k)] {
			return false
		}
	}
	return true
}

// apiCalls gives each JetStream call of a longer task a context of its
// own, bounded by apiTimeout and by the task's.
type apiCalls struct {
	parent  context.Context
	cancels []context.CancelFunc
}

func (a *apiCalls) ctx() context.Context {
	c, cancel := context.WithTimeout(a.parent, apiTimeout)
	a.cancels = append(a.cancels, cancel)
	return c
}

func (a *apiCalls) done() {
	for _, c := range a.cancels {
		c()
	}
}
