package processor

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
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
	HookAfterAck     = "after-ack"     // its requests are acked (or nakked, or terminated)

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
// acknowledge. A memory-management request (create, info, drop) ends a
// part of the batch that runs on its own, so that what comes after it is
// decoded and run against the memory as the request left it.
func (p *partition) handleBatch(batch []jetstream.Msg) {
	if batch = dropTicks(batch); len(batch) == 0 {
		p.store.Tick()
		p.reportBacklog(p.store.Backlog())
		return
	}
	stopKeepAlive := p.keepAlive(batch)
	defer stopKeepAlive()
	p.store.Pulled(len(batch))
	for len(batch) > 0 {
		n := len(batch)
		for i, msg := range batch {
			if p.route(msg.Subject()).Op.Manages() {
				n = i + 1
				break
			}
		}
		p.runBatch(batch[:n])
		batch = batch[n:]
	}
}

// runBatch runs a batch in which only the last request may manage a
// memory.
func (p *partition) runBatch(batch []jetstream.Msg) {
	start := time.Now()
	p.hook(HookAfterPull)
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

	p.expired = p.expired[:0]
	p.prepareAll(batch)
	for _, m := range p.mems.order {
		if len(m.reqs) > 0 {
			p.plan(m)
			p.execute(m)
		}
	}
	if s := &p.slots[len(p.slots)-1]; s.out.Op.Manages() && s.out.Err == nil && !s.replayed() {
		p.manage(s)
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
	p.dropExpired()
	p.hook(HookAfterPersist)
	if !p.valid() {
		// The lease lapsed while the batch ran: another process may serve
		// the partition already, and replays its results from the journal.
		// Publish and ack nothing.
		p.lose()
		return
	}
	p.publishAndAck()
	p.store.Tick()
	p.reportBacklog(p.store.Backlog())
}

// prepareAll decodes every message into its slot and queues the valid
// ones on their memory, except those whose effects are already durable.
func (p *partition) prepareAll(batch []jetstream.Msg) {
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
		if s.out.Err != nil {
			continue
		}
		if s.mem == nil && (s.out.Op == wire.OpStore || s.out.Op == wire.OpProcess) {
			// The first store or process of a memory makes it, with the
			// server's defaults; a retrieve or a forget of one that does
			// not exist finds nothing.
			m, e := p.mems.add(s.out.Memory, p.mems.defaults)
			if e != nil {
				s.fail(e)
				continue
			}
			s.mem, s.created = m, &m.cfg
		}
		if s.mem != nil && !s.out.Op.Manages() {
			s.mem.reqs = append(s.mem.reqs, i)
		}
	}
}

// slot is one message of a batch and everything derived from it. Slots are
// reused from batch to batch.
type slot struct {
	msg       jetstream.Msg
	ts        time.Time // when the stream stored the request
	delivered uint64    // how often JetStream has delivered it
	replyTo   string    // a checked Pelm-Reply-To, or ""
	mem       *memory
	req       wire.Request
	out       wire.Outcome
	meta      []byte // tagged meta handed to the memory on store
	scrubbed  []byte // the text with personal data replaced, in a scrubbing memory
	expires   int64  // a store's expiry, Unix ns; 0: never

	retrieveOp, storeOp, forgetOp int // indices into mem.ops, or -1
	filterAfter                   filter.State

	// applied: it went through its memory's filter or forget, so it has
	// effects, and a redelivery must replay its result, not run again.
	applied bool
	subject string                 // where the result goes
	body    []byte                 // the encoded result
	replay  *durable.Result        // the result of an earlier delivery whose effects are durable
	resAck  jetstream.PubAckFuture // the stream's acknowledgement of the result, when a stream captures it
	resLost bool                   // its JetStream publish failed
	dlqAck  jetstream.PubAckFuture // the dead-letter stream's acknowledgement of its copy

	created *wire.MemoryConfig // the settings of the memory it made
	dropped bool               // it deleted its memory
	config  wire.MemoryConfig  // a create's or info's result
	dupOf   int                // an earlier slot of this batch with the same request, or -1
}

// replayed reports whether the slot republishes an earlier result.
func (s *slot) replayed() bool { return s.replay != nil || s.dupOf >= 0 }

func (s *slot) fail(e *wire.Error) { s.out.Err = e }

// prepare decodes and validates one message; on failure s.out.Err is set.
func (p *partition) prepare(s *slot, msg jetstream.Msg) {
	s.msg, s.replyTo, s.mem, s.replay, s.dupOf, s.applied, s.created, s.dropped = msg, "", nil, nil, -1, false, nil, false
	s.retrieveOp, s.storeOp, s.forgetOp = -1, -1, -1
	s.out.Reset()
	o := &s.out

	if md, err := msg.Metadata(); err == nil {
		o.Seq, s.ts, s.delivered = md.Sequence.Stream, md.Timestamp, md.NumDelivered
	} else {
		s.ts, s.delivered = time.Now(), 1
	}
	h := msg.Headers()
	o.ReqID = h.Get(wire.HeaderMsgID)
	// The encoding comes first so that even an error result speaks the
	// client's encoding.
	ct := h.Get(wire.HeaderContentType)
	enc, known := wire.EncodingOf(ct)
	o.Enc = enc
	// The reply subject is checked before the request's own subject, so
	// that a client that named one gets even that error there.
	var replyErr *wire.Error
	if to := h.Get(wire.HeaderReplyTo); to != "" {
		if replyErr = p.rules.Check(to); replyErr == nil {
			s.replyTo = to
		}
	}
	rt := p.route(msg.Subject())
	o.Memory, o.OpName, o.Op = rt.Memory, rt.OpName, rt.Op
	switch {
	case replyErr != nil:
		s.fail(replyErr)
		return
	case rt.Err != nil:
		s.fail(rt.Err)
		return
	case !known:
		s.fail(wire.Errorf(wire.CodeBadEncoding, "Content-Type %q: want application/msgpack or application/json", wire.Clip(ct)))
		return
	}
	o.CType = ct
	r := &s.req
	dim := p.mems.dim(o.Memory)
	if cap(r.Vector) < dim {
		r.Vector = make([]float32, 0, dim)
	}
	var e *wire.Error
	if o.Enc == wire.JSON {
		e = wire.DecodeJSON(msg.Data(), dim, r)
	} else {
		e = p.mdec.Decode(msg.Data(), dim, r)
	}
	if e == nil {
		e = r.Validate(o.Op, p.defaults)
	}
	if e == nil && r.WithVectors && r.TopK*dim*4 > p.maxResult {
		// Every encoding spends at least four bytes a value: such a result
		// could never be published, and its buffers would stay allocated.
		e = wire.Errorf(wire.CodeTooLarge, "with_vectors: %d matches of %d values cannot fit the server's max payload of %d bytes; ask for fewer", r.TopK, dim, p.maxResult)
	}
	if e != nil {
		s.fail(e)
		return
	}
	s.mem = p.mems.byName[o.Memory]
	if s.mem == nil {
		o.WithMatches = o.Op == wire.OpRetrieve
		if o.Op == wire.OpForget {
			o.ID = string(r.ID)
		}
	}
}

// compose encodes every result, with its latency, into its slot.
func (p *partition) compose(start time.Time) {
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
func (p *partition) effects() []durable.Entry {
	p.entries = p.entries[:0]
	for i := range p.slots {
		s := &p.slots[i]
		if !s.applied {
			continue
		}
		o := &s.out
		en := durable.Entry{Seq: o.Seq, Memory: o.Memory, Decided: o.Decided, Filter: s.filterAfter,
			Result: durable.Result{Subject: s.subject, ContentType: o.ContentType(), ReqID: o.ReqID, Body: s.body}}
		en.Created, en.Time = s.created, s.ts.UnixNano()
		switch {
		case s.storeOp >= 0:
			en.Kind, en.ID, en.Vector, en.Phase, en.Confidence, en.Meta = durable.KindStore, o.ID, s.req.Vector, s.req.Phase, s.req.Confidence, s.meta
			en.Expires = s.expires
			en.Evicted, en.HasEvicted = o.Evicted, o.HasEvicted
		case s.forgetOp >= 0:
			en.Kind, en.ID, en.Found = durable.KindForget, o.ID, o.Found
		case s.dropped:
			en.Kind = durable.KindDrop
		}
		p.entries = append(p.entries, en)
	}
	return p.entries
}

// dropTicks removes the idle ticks from a batch, in place: the pull loop
// hands the batch loop a nil message when it has waited idleTick for one,
// so that the durable store's housekeeping goes on (Tick).
func dropTicks(batch []jetstream.Msg) []jetstream.Msg {
	n := 0
	for _, m := range batch {
		if m != nil {
			batch[n] = m
			n++
		}
	}
	return batch[:n]
}
