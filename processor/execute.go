package processor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/wire"
)

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

	retrieveOp, storeOp, forgetOp int // indices into mem.ops, or -1
	filterAfter                   filter.State

	// applied: it went through its memory's filter or forget, so it has
	// effects, and a redelivery must replay its result, not run again.
	applied bool
	subject string          // where the result goes
	body    []byte          // the encoded result
	replay  *durable.Result // the result of an earlier delivery whose effects are durable
	dupOf   int             // an earlier slot of this batch with the same request, or -1
}

// replayed reports whether the slot republishes an earlier result.
func (s *slot) replayed() bool { return s.replay != nil || s.dupOf >= 0 }

func (s *slot) fail(e *wire.Error) { s.out.Err = e }

// prepare decodes and validates one message; on failure s.out.Err is set.
func (p *Processor) prepare(s *slot, msg jetstream.Msg) {
	s.msg, s.replyTo, s.mem, s.replay, s.dupOf, s.applied = msg, "", nil, nil, -1, false
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
	rt := wire.ParseSubject(msg.Subject(), p.reqPrefix)
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
	dim := p.mems.cfg.Dim
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
	if e == nil {
		// Only store and process create a memory; a retrieve or a forget
		// of one that does not exist finds nothing.
		s.mem, e = p.mems.get(o.Memory, o.Op == wire.OpStore || o.Op == wire.OpProcess)
	}
	if e != nil {
		s.fail(e)
		return
	}
	if s.mem == nil {
		o.WithMatches = o.Op == wire.OpRetrieve
		if o.Op == wire.OpForget {
			o.ID = string(r.ID)
		}
	}
}

// plan runs the filter for a memory's requests in stream order and turns
// them into memory operations.
func (p *Processor) plan(m *memory) {
	m.ops = m.ops[:0]
	for _, i := range m.reqs {
		s := &p.slots[i]
		r, o := &s.req, &s.out
		if p.cfg.Hook != nil && r.Has(wire.HasID) {
			p.cfg.Hook(HookRequest + string(r.ID))
		}
		switch o.Op {
		case wire.OpStore, wire.OpProcess:
			moral := filter.DefaultMoral
			switch {
			case r.Has(wire.HasMoral):
				moral = r.Moral
			case r.Has(wire.HasText):
				moral = filter.Score(string(r.Text))
			}
			accepted, threshold := m.filter.Decide(moral)
			o.Decided, o.Moral, o.Threshold = true, moral, threshold
			s.filterAfter = m.filter.State()
			s.applied = true
			if r.Has(wire.HasID) {
				o.ID = string(r.ID)
			} else {
				o.ID = strconv.FormatUint(o.Seq, 10)
			}
			o.WithMatches = o.Op == wire.OpProcess
			switch {
			case !accepted:
				o.Reason = "moral"
			case r.Confidence < 0.5:
				o.Reason = "low_confidence"
			default:
				o.Accepted = true
			}
			if !o.Accepted {
				continue
			}
			if o.Op == wire.OpProcess {
				s.retrieveOp = len(m.ops)
				m.ops = append(m.ops, retrieveOp(r))
			}
			s.meta = s.meta[:0]
			if r.Has(wire.HasMeta) {
				s.meta = append(append(s.meta, wire.MetaTag(o.Enc)), r.Meta...)
			}
			s.storeOp = len(m.ops)
			m.ops = append(m.ops, pelm.Op{Kind: pelm.OpStore, ID: o.ID, Vector: r.Vector, Phase: r.Phase, Confidence: r.Confidence, Meta: s.meta})
		case wire.OpRetrieve:
			o.WithMatches = true
			s.retrieveOp = len(m.ops)
			m.ops = append(m.ops, retrieveOp(r))
		case wire.OpForget:
			s.applied = true
			o.ID = string(r.ID)
			s.forgetOp = len(m.ops)
			m.ops = append(m.ops, pelm.Op{Kind: pelm.OpForget, ID: o.ID})
		}
	}
}

func retrieveOp(r *wire.Request) pelm.Op {
	return pelm.Op{Kind: pelm.OpRetrieve, Vector: r.Vector, Phase: r.Phase, Tolerance: r.Tolerance,
		TopK: r.TopK, MinConfidence: r.MinConfidence, WithVectors: r.WithVectors}
}

// execute applies a memory's planned operations and copies their results
// into the outcomes.
func (p *Processor) execute(m *memory) {
	if len(m.ops) == 0 {
		return
	}
	if cap(m.results) < len(m.ops) {
		m.results = append(m.results[:cap(m.results)], make([]pelm.Result, len(m.ops)-cap(m.results))...)
	}
	m.results = m.results[:len(m.ops)]
	if err := m.apply(); err != nil {
		// Validation should make this unreachable; if it is reached, the
		// memory is unchanged (pelm checks before it changes anything) and
		// the requests go to the DLQ instead of taking the service down.
		p.log.Error().Err(err).Str("memory", m.name).Msg("memory refused a batch")
		for _, i := range m.reqs {
			p.slots[i].fail(wire.Errorf(wire.CodeInternal, "memory %q: %v", m.name, err))
			p.slots[i].applied = false
		}
		p.stale = true // the filter decided already: reload it from what is durable
		return
	}
	for _, i := range m.reqs {
		s := &p.slots[i]
		o := &s.out
		if s.retrieveOp >= 0 {
			o.Matches = appendMatches(o.Matches[:0], m.results[s.retrieveOp].Matches)
		}
		if s.storeOp >= 0 {
			res := &m.results[s.storeOp]
			o.Evicted, o.HasEvicted = res.Evicted, res.HasEvicted
		}
		if s.forgetOp >= 0 {
			o.Found = m.results[s.forgetOp].Found
		}
	}
}

// apply runs the planned ops, turning a panic (a broken precondition) into
// an error.
func (m *memory) apply() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	m.mem.Apply(m.ops, m.results)
	return nil
}

// appendMatches copies a retrieve's matches for the result encoder. Their
// strings, metas and vectors are not copied: they stay valid until the
// memory's next Apply, after the batch's results are encoded.
func appendMatches(dst []wire.Match, ms []pelm.Match) []wire.Match {
	for i := range ms {
		m := &ms[i]
		dst = append(dst, wire.Match{ID: m.ID, Score: m.Score, Phase: m.Phase, Confidence: m.Confidence, Meta: m.Meta, Vector: m.Vector})
	}
	return dst
}
