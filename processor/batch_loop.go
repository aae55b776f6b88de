package processor

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/wire"
)

// Points of the batch loop that a test hook can observe (Config.Hook), in
// the order a batch passes them.
const (
	HookAfterPull    = "after-pull"    // the batch is pulled, nothing is done
	HookAfterPersist = "after-persist" // its effects are durable, no result is out
	HookAfterPublish = "after-publish" // its results are handed to NATS, not flushed
	HookBeforeAck    = "before-ack"    // its results reached the server, nothing is acked

	// HookRequest+id is passed for each request that names an id, just
	// before its memory runs it.
	HookRequest = "request:"
)

func (p *Processor) hook(point string) {
	if p.cfg.Hook != nil {
		p.cfg.Hook(point)
	}
}

// appendTimeout bounds the wait for a batch's journal record.
const appendTimeout = 10 * time.Second

// handleBatch runs one batch: decode, filter and execute per memory in
// stream order, make the effects durable, publish every result, then
// acknowledge.
func (p *Processor) handleBatch(batch []jetstream.Msg) {
	if batch = dropTicks(batch); len(batch) == 0 {
		p.store.Tick()
		p.metrics.durability(p.store.Backlog())
		return
	}
	start := time.Now()
	stopKeepAlive := p.keepAlive(batch)
	defer stopKeepAlive()
	p.hook(HookAfterPull)
	p.store.Pulled(len(batch))

	if p.stale {
		// A batch failed earlier: what the memories hold may not be what
		// is durable. Rebuild them before running anything.
		if err := p.restore(); err != nil {
			p.log.Error().Err(err).Msg("rebuild memories after a failed batch")
			p.nakAll(batch)
			return
		}
		p.stale = false
	}

	p.prepareAll(batch)
	for _, m := range p.mems.order {
		if len(m.reqs) > 0 {
			p.plan(m)
			p.execute(m)
		}
	}
	p.compose(start)

	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	err := p.store.Append(ctx, p.effects())
	cancel()
	if err != nil {
		p.log.Error().Err(err).Int("batch", len(batch)).Msg("persist batch; its requests will be redelivered")
		p.stale = true
		p.nakAll(batch)
		return
	}
	p.hook(HookAfterPersist)
	p.publishAndAck()
	p.store.Tick()
	p.metrics.durability(p.store.Backlog())
}

// prepareAll decodes every message into its slot and queues the valid
// ones on their memory, except those whose effects are already durable.
func (p *Processor) prepareAll(batch []jetstream.Msg) {
	if cap(p.slots) < len(batch) {
		p.slots = append(p.slots[:cap(p.slots)], make([]slot, len(batch)-cap(p.slots))...)
	}
	p.slots = p.slots[:len(batch)]
	for _, m := range p.mems.order {
		m.reqs = m.reqs[:0]
	}
	clear(p.seen)
	for i, msg := range batch {
		s := &p.slots[i]
		p.prepare(s, msg)
		seq := s.out.Seq
		if r, ok := p.store.Replay(seq); ok {
			s.replay = r
			continue
		}
		if j, dup := p.seen[seq]; dup {
			// The same request delivered twice in one batch (redelivered
			// while its first delivery waited): both get the first's result.
			s.dupOf = j
			continue
		}
		p.seen[seq] = i
		if s.out.Err == nil && s.mem != nil {
			s.mem.reqs = append(s.mem.reqs, i)
		}
	}
}

// compose encodes every result, with its latency, into its slot.
func (p *Processor) compose(start time.Time) {
	for i := range p.slots {
		s := &p.slots[i]
		o := &s.out
		if r := s.replay; r != nil {
			s.subject, s.body = r.Subject, append(s.body[:0], r.Body...)
			continue
		}
		if s.dupOf >= 0 {
			first := &p.slots[s.dupOf]
			s.subject, s.body = first.subject, append(s.body[:0], first.body...)
			continue
		}
		now := time.Now()
		o.Batch = len(p.slots)
		o.QueueUS = start.Sub(s.ts).Microseconds()
		o.ProcessUS = now.Sub(start).Microseconds()
		o.TotalUS = now.Sub(s.ts).Microseconds()
		s.subject = s.replyTo
		if s.subject == "" {
			s.subject = p.resultSubject(s)
		}
		s.body = append(s.body[:0], p.renc.Encode(o)...)
		if len(s.body) > p.maxResult && o.Err == nil {
			o.Matches, o.WithMatches = o.Matches[:0], false
			o.Err = wire.Errorf(wire.CodeTooLarge, "the result is %d bytes, more than the server's max payload allows: ask for fewer matches or no vectors", len(s.body))
			s.body = append(s.body[:0], p.renc.Encode(o)...)
		}
	}
}

// effects lists the batch's effectful requests, in stream order, for the
// journal.
func (p *Processor) effects() []durable.Entry {
	p.entries = p.entries[:0]
	for i := range p.slots {
		s := &p.slots[i]
		if !s.applied {
			continue
		}
		o := &s.out
		en := durable.Entry{Seq: o.Seq, Memory: o.Memory, Decided: o.Decided, Filter: s.filterAfter,
			Result: durable.Result{Subject: s.subject, ContentType: o.ContentType(), ReqID: o.ReqID, Body: s.body}}
		switch {
		case s.storeOp >= 0:
			en.Kind, en.ID, en.Vector, en.Phase, en.Confidence, en.Meta = durable.KindStore, o.ID, s.req.Vector, s.req.Phase, s.req.Confidence, s.meta
			en.Evicted, en.HasEvicted = o.Evicted, o.HasEvicted
		case s.forgetOp >= 0:
			en.Kind, en.ID, en.Found = durable.KindForget, o.ID, o.Found
		}
		p.entries = append(p.entries, en)
	}
	return p.entries
}

// dropTicks removes the idle ticks from a batch, in place.
func dropTicks(batch []jetstream.Msg) []jetstream.Msg {
	n := 0
	for _, m := range batch {
		if _, ok := m.(tick); !ok {
			batch[n] = m
			n++
		}
	}
	return batch[:n]
}
