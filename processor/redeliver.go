package processor

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/wire"
)

// keepAlive tells JetStream that a batch is still being worked on, every
// third of AckWait, until the returned function is called, so that a batch
// slower than AckWait is not redelivered under our feet.
func (p *Processor) keepAlive(batch []jetstream.Msg) (stop func()) {
	every := p.cfg.AckWait / 3
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		for _, m := range batch {
			_ = m.InProgress()
		}
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// backoff is the redelivery delay after the n-th failed delivery:
// 0.5 s doubling up to 30 s.
func backoff(delivered uint64) time.Duration {
	d := 500 * time.Millisecond
	for i := uint64(1); i < delivered && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

func (p *Processor) nak(s *slot) { _ = s.msg.NakWithDelay(backoff(s.delivered)) }

func (p *Processor) nakAll(batch []jetstream.Msg) {
	for _, m := range batch {
		delivered := uint64(1)
		if md, err := m.Metadata(); err == nil {
			delivered = md.NumDelivered
		}
		_ = m.NakWithDelay(backoff(delivered))
	}
}

// maxDeliveries is the advisory JetStream publishes when a request has
// been delivered MaxDeliver times without an ack.
type maxDeliveries struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries moves every request that JetStream gives up on (a
// transient failure that never ended, or a request that crashes the
// processor) to the DLQ with its reason, and out of the requests stream.
func (p *Processor) watchMaxDeliveries(ctx context.Context) (*nats.Subscription, error) {
	prefix := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + wire.RequestsStream + "."
	return p.nc.Subscribe(prefix+"*", func(m *nats.Msg) {
		if !p.serves(strings.TrimPrefix(m.Subject, prefix)) {
			return // another process's partition: its owner moves it
		}
		var adv maxDeliveries
		if err := json.Unmarshal(m.Data, &adv); err != nil {
			p.log.Warn().Err(err).Msg("max deliveries advisory")
			return
		}
		if err := p.deadLetterGivenUp(ctx, adv); err != nil {
			p.log.Error().Err(err).Uint64("seq", adv.StreamSeq).Msg("move an undeliverable request to the DLQ")
		}
	})
}

// serves reports whether a consumer is that of a partition this process
// serves.
func (p *Processor) serves(consumer string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pt := range p.running {
		if c := pt.consumer(); c != nil && c.CachedInfo().Name == consumer {
			return true
		}
	}
	return false
}

func (p *Processor) deadLetterGivenUp(ctx context.Context, adv maxDeliveries) error {
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	st, err := p.js.Stream(ctx, wire.RequestsStream)
	if err != nil {
		return err
	}
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // acknowledged after all
	}
	if err != nil {
		return err
	}
	if err := p.deadLetterRaw(ctx, st, raw, wire.Errorf(wire.CodeInternal, "not processed after %d deliveries", adv.Deliveries)); err != nil {
		return err
	}
	p.log.Warn().Uint64("seq", adv.StreamSeq).Uint64("deliveries", adv.Deliveries).Msg("request moved to the DLQ")
	return nil
}

// deadLetterRaw copies a request read back from the requests stream to the
// DLQ, publishes its error result, and deletes it from the stream.
func (p *Processor) deadLetterRaw(ctx context.Context, st jetstream.Stream, raw *jetstream.RawStreamMsg, e *wire.Error) error {
	rt := p.route(raw.Subject)
	dl := p.deadLetterOf(raw.Header, raw.Data, raw.Sequence, rt.Memory, rt.OpName, e.Error())
	if _, err := p.js.PublishMsg(ctx, dl); err != nil {
		return err
	}
	// The request still gets its (error) result.
	o := &wire.Outcome{OpName: rt.OpName, Op: rt.Op, Memory: rt.Memory, ReqID: raw.Header.Get(wire.HeaderMsgID), Seq: raw.Sequence, Err: e}
	if enc, known := wire.EncodingOf(raw.Header.Get(wire.HeaderContentType)); known {
		o.Enc, o.CType = enc, raw.Header.Get(wire.HeaderContentType)
	}
	subject := p.resPrefix + o.Memory + "." + o.OpName
	if to := raw.Header.Get(wire.HeaderReplyTo); to != "" && p.rules.Check(to) == nil {
		subject = to
	}
	rh := newResultHeader()
	rh.set(o.ReqID, o.Seq, o.ContentType())
	res := &nats.Msg{Subject: subject, Header: rh.h, Data: wire.NewResultEncoder().Encode(o)}
	if p.caps.match(subject) {
		// A stream keeps results there: the request goes only once it has.
		if _, err := p.js.PublishMsg(ctx, res); err != nil {
			return err
		}
	} else if err := p.nc.PublishMsg(res); err != nil {
		return err
	}
	p.metrics.deadLetter()
	return st.DeleteMsg(ctx, raw.Sequence)
}
