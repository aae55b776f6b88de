package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/wire"
)

// Names of the echo floor's stream and consumer.
const (
	EchoStream   = "PELM_BENCH_ECHO"
	EchoConsumer = "pelm-bench-echo"
)

// echo is the floor: a JetStream consumer set up, pulled, batched, replied
// to and acked as pelm's processor does, with no work in between.
type echo struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	prefix  string // "<echo prefix>.req."
	batch   batcher.Config
	replies [numOps][]byte // reply bodies per op

	// per message, reused (nats.go copies the header on publish)
	out                     nats.Msg
	reqID, seq, msgID, ctyp []string
}

func newEcho(nc *nats.Conn, cfg Config, replySizes [numOps]int) (*echo, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: echo: %w", ErrSetup, err)
	}
	e := &echo{nc: nc, js: js, prefix: cfg.EchoPrefix + ".req.", batch: cfg.Batch,
		reqID: []string{""}, seq: []string{""}, msgID: []string{""}, ctyp: []string{"application/msgpack"}}
	for o, n := range replySizes {
		e.replies[o] = echoBody(n)
	}
	e.out.Header = nats.Header{wire.HeaderRequestID: e.reqID, wire.HeaderSeq: e.seq, wire.HeaderMsgID: e.msgID, wire.HeaderContentType: e.ctyp}
	return e, nil
}

// setup creates the echo's stream and consumer afresh, pelm's settings but
// the subjects.
func (e *echo) setup(ctx context.Context) (jetstream.Consumer, error) {
	if err := e.js.DeleteStream(ctx, EchoStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: delete stale %s: %w", ErrSetup, EchoStream, err)
	}
	_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: EchoStream, Subjects: []string{e.prefix + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrSetup, EchoStream, err)
	}
	cons, err := e.js.CreateConsumer(ctx, EchoStream, jetstream.ConsumerConfig{
		Durable:       EchoConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    5,
		MaxAckPending: 4 * e.batch.MaxSize,
		FilterSubject: e.prefix + ">",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: create consumer %s: %w", ErrSetup, EchoConsumer, err)
	}
	return cons, nil
}

// teardown deletes the echo's stream (and so its consumer).
func (e *echo) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.js.DeleteStream(ctx, EchoStream)
}

// run answers requests until ctx is done, then finishes the batch in hand.
func (e *echo) run(ctx context.Context, cons jetstream.Consumer) error {
	b, err := batcher.New[jetstream.Msg](e.batch)
	if err != nil {
		return fmt.Errorf("%w: echo: %w", ErrConfig, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * e.batch.MaxSize))
	if err != nil {
		return fmt.Errorf("%w: echo consume: %w", ErrSetup, err)
	}
	in := make(chan jetstream.Msg, e.batch.MaxSize)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(in)
		for {
			msg, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			in <- msg
		}
	})
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	_ = b.Run(context.Background(), in, e.handle)
	wg.Wait()
	return nil
}

// handle replies to a batch, flushes, then acks: pelm's publish step
// without pelm's work.
func (e *echo) handle(batch []jetstream.Msg) {
	for _, msg := range batch {
		var seq uint64
		if md, err := msg.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		h := msg.Headers()
		to := h.Get(wire.HeaderReplyTo)
		if to == "" {
			continue
		}
		s := strconv.FormatUint(seq, 10)
		e.reqID[0], e.seq[0], e.msgID[0] = h.Get(wire.HeaderMsgID), s, "res-"+s
		e.out.Subject, e.out.Data = to, e.replies[e.opOf(msg.Subject())]
		_ = e.nc.PublishMsg(&e.out)
	}
	if err := e.nc.FlushTimeout(5 * time.Second); err != nil {
		for _, msg := range batch {
			_ = msg.NakWithDelay(time.Second)
		}
		return
	}
	for _, msg := range batch {
		_ = msg.Ack()
	}
}

func (e *echo) opOf(subject string) op {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		if o, ok := opByName(subject[i+1:]); ok {
			return o
		}
	}
	return opStore
}
