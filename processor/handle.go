package processor

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// handleBatch runs one batch: decode, filter and execute per memory in
// stream order, make the effects durable, publish every result, then
// acknowledge.
func (p *Processor) handleBatch(batch []jetstream.Msg) {
	if batch = dropTicks(batch); len(batch) == 0 {
		p.confirmAcks(false)
		p.materializeBehind()
		return
	}
	start := time.Now()
	stopKeepAlive := p.keepAlive(batch)
	defer stopKeepAlive()
	p.hook(HookAfterPull)
	p.consumed += uint64(len(batch))
	p.retireDone()
	p.confirmAcks(false)

	if p.stale {
		// A commit failed earlier: what the memories hold may not be what
		// is durable. Rebuild them before running anything.
		if err := p.restore(); err != nil {
			p.log.Error().Err(err).Msg("rebuild memories after a failed commit")
			p.nakAll(batch)
			return
		}
		p.stale = false
	}

	p.prepareAll(batch)
	for _, m := range p.order {
		if len(m.reqs) > 0 {
			p.plan(m)
			p.execute(m)
		}
	}
	p.compose(start)

	if err := p.persist(); err != nil {
		p.log.Error().Err(err).Int("batch", len(batch)).Msg("persist batch; its requests will be redelivered")
		p.stale = true
		p.nakAll(batch)
		return
	}
	p.hook(HookAfterPersist)
	p.publishAndAck()
	p.materializeBehind()
}

// materializeBehind moves materialising along after a batch or an idle
// tick. A failure is logged and retried on a later call: the journal holds
// everything meanwhile.
func (p *Processor) materializeBehind() {
	_ = p.materialize(false)
	p.metrics.durability(len(p.jrecs), len(p.mat.sealed))
}

// prepareAll decodes every message into its slot and queues the valid
// ones on their memory, except those whose effects are already durable.
func (p *Processor) prepareAll(batch []jetstream.Msg) {
	if cap(p.slots) < len(batch) {
		p.slots = append(p.slots[:cap(p.slots)], make([]slot, len(batch)-cap(p.slots))...)
	}
	p.slots = p.slots[:len(batch)]
	for _, m := range p.order {
		m.reqs = m.reqs[:0]
	}
	clear(p.seen)
	for i, msg := range batch {
		s := &p.slots[i]
		p.prepare(s, msg)
		seq := s.out.seq
		if d, ok := p.done[seq]; ok {
			s.replay = d
			continue
		}
		if j, dup := p.seen[seq]; dup {
			// The same request delivered twice in one batch (redelivered
			// while its first delivery waited): both get the first's result.
			s.dupOf = j
			continue
		}
		p.seen[seq] = i
		if s.out.err == nil && s.mem != nil {
			s.mem.reqs = append(s.mem.reqs, i)
		}
	}
}

// compose encodes every result, with its latency, into its slot.
func (p *Processor) compose(start time.Time) {
	for i := range p.slots {
		s := &p.slots[i]
		o := &s.out
		if d := s.replay; d != nil {
			s.subject, s.body = d.subject, append(s.body[:0], d.body...)
			continue
		}
		if s.dupOf >= 0 {
			first := &p.slots[s.dupOf]
			s.subject, s.body = first.subject, append(s.body[:0], first.body...)
			continue
		}
		now := time.Now()
		o.batch = len(p.slots)
		o.queueUS = start.Sub(s.ts).Microseconds()
		o.processUS = now.Sub(start).Microseconds()
		o.totalUS = now.Sub(s.ts).Microseconds()
		s.subject = s.replyTo
		if s.subject == "" {
			s.subject = p.resultSubject(s)
		}
		s.body = append(s.body[:0], p.renc.encode(o)...)
		if len(s.body) > p.maxResult && o.err == nil {
			o.matches, o.withMatches = nil, false
			o.err = reqErr(CodeTooLarge, "the result is %d bytes, more than the server's max payload allows: ask for fewer matches or no vectors", len(s.body))
			s.body = append(s.body[:0], p.renc.encode(o)...)
		}
	}
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
