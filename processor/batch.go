package processor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
)

// slot is one message of a batch and everything derived from it. Slots are
// reused from batch to batch.
type slot struct {
	msg       jetstream.Msg
	ts        time.Time // when the stream stored the request
	delivered uint64    // how often JetStream has delivered it
	replyTo   string    // a checked Pelm-Reply-To, or ""
	mem       *memory
	req       Request
	out       outcome
	meta      []byte // tagged meta handed to the memory on store
	vecLE     []byte // a store's vector as little-endian float32, for the journal and the state

	retrieveOp, storeOp, forgetOp int // indices into mem.ops, or -1
	filterAfter                   filter.State

	applied bool       // it went through its memory's filter or forget: it has effects
	subject string     // where the result goes
	body    []byte     // the encoded result
	replay  *doneEntry // the result of an earlier delivery whose effects are durable
	dupOf   int        // an earlier slot of this batch with the same request, or -1
}

// effectful reports whether this delivery changed its memory or its filter,
// so that a redelivery must replay its result rather than run it again.
func (s *slot) effectful() bool { return s.applied }

// replayed reports whether the slot republishes an earlier result.
func (s *slot) replayed() bool { return s.replay != nil || s.dupOf >= 0 }

func (s *slot) fail(e *RequestError) { s.out.err = e }

// prepare decodes and validates one message; on failure s.out.err is set.
func (p *Processor) prepare(s *slot, msg jetstream.Msg) {
	s.msg, s.replyTo, s.mem, s.replay, s.dupOf, s.applied = msg, "", nil, nil, -1, false
	s.retrieveOp, s.storeOp, s.forgetOp = -1, -1, -1
	s.out.reset()
	o := &s.out

	if md, err := msg.Metadata(); err == nil {
		o.seq, s.ts, s.delivered = md.Sequence.Stream, md.Timestamp, md.NumDelivered
	} else {
		s.ts, s.delivered = time.Now(), 1
	}
	h := msg.Headers()
	o.reqID = h.Get(HeaderMsgID)
	// The encoding comes first so that even an error result speaks the
	// client's encoding.
	ct := h.Get(HeaderContentType)
	enc, known := encodingOf(ct)
	o.enc = enc
	// The reply subject is checked before the request's own subject, so
	// that a client that named one gets even that error there.
	var replyErr *RequestError
	if to := h.Get(HeaderReplyTo); to != "" {
		if replyErr = p.rules.check(to); replyErr == nil {
			s.replyTo = to
		}
	}
	rt := parseSubject(msg.Subject(), p.reqPrefix)
	o.memory, o.opName, o.op = rt.memory, rt.opName, rt.op
	switch {
	case replyErr != nil:
		s.fail(replyErr)
		return
	case rt.err != nil:
		s.fail(rt.err)
		return
	case !known:
		s.fail(reqErr(CodeBadEncoding, "Content-Type %q: want application/msgpack or application/json", clip(ct)))
		return
	}
	o.ctype = ct
	r := &s.req
	if cap(r.Vector) < p.dim {
		r.Vector = make([]float32, 0, p.dim)
	}
	var e *RequestError
	if o.enc == JSON {
		e = decodeJSON(msg.Data(), p.dim, r)
	} else {
		e = p.mdec.decode(msg.Data(), p.dim, r)
	}
	if e == nil {
		e = r.validate(o.op, p.defaults)
	}
	if e == nil && r.WithVectors && r.TopK*p.dim*4 > p.maxResult {
		// Every encoding spends at least four bytes a value: such a result
		// could never be published, and its buffers would stay allocated.
		e = reqErr(CodeTooLarge, "with_vectors: %d matches of %d values cannot fit the server's max payload of %d bytes; ask for fewer", r.TopK, p.dim, p.maxResult)
	}
	if e == nil {
		// Only store and process create a memory; a retrieve or a forget
		// of one that does not exist finds nothing.
		s.mem, e = p.memoryFor(o.memory, o.op == OpStore || o.op == OpProcess)
	}
	if e != nil {
		s.fail(e)
		return
	}
	if s.mem == nil {
		o.withMatches = o.op == OpRetrieve
		if o.op == OpForget {
			o.id = string(r.ID)
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
		if p.cfg.Hook != nil && r.Has(hasID) {
			p.cfg.Hook(HookRequest + string(r.ID))
		}
		switch o.op {
		case OpStore, OpProcess:
			moral := filter.DefaultMoral
			switch {
			case r.Has(hasMoral):
				moral = r.Moral
			case r.Has(hasText):
				moral = filter.Score(string(r.Text))
			}
			accepted, threshold := m.filter.Decide(moral)
			o.decided, o.moral, o.threshold = true, moral, threshold
			s.filterAfter = m.filter.State()
			s.applied = true
			if r.Has(hasID) {
				o.id = string(r.ID)
			} else {
				o.id = strconv.FormatUint(o.seq, 10)
			}
			o.withMatches = o.op == OpProcess
			switch {
			case !accepted:
				o.reason = "moral"
			case r.Confidence < 0.5:
				o.reason = "low_confidence"
			default:
				o.accepted = true
			}
			if !o.accepted {
				continue
			}
			if o.op == OpProcess {
				s.retrieveOp = len(m.ops)
				m.ops = append(m.ops, retrieveOp(r))
			}
			s.meta = s.meta[:0]
			if r.Has(hasMeta) {
				s.meta = append(append(s.meta, metaTag(o.enc)), r.Meta...)
			}
			s.storeOp = len(m.ops)
			m.ops = append(m.ops, pelm.Op{Kind: pelm.OpStore, ID: o.id, Vector: r.Vector, Phase: r.Phase, Confidence: r.Confidence, Meta: s.meta})
		case OpRetrieve:
			o.withMatches = true
			s.retrieveOp = len(m.ops)
			m.ops = append(m.ops, retrieveOp(r))
		case OpForget:
			s.applied = true
			o.id = string(r.ID)
			s.forgetOp = len(m.ops)
			m.ops = append(m.ops, pelm.Op{Kind: pelm.OpForget, ID: o.id})
		}
	}
}

func retrieveOp(r *Request) pelm.Op {
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
			p.slots[i].fail(reqErr(CodeInternal, "memory %q: %v", m.name, err))
			p.slots[i].applied = false
		}
		p.stale = true // the filter decided already: reload it from what is durable
		return
	}
	for _, i := range m.reqs {
		s := &p.slots[i]
		o := &s.out
		if s.retrieveOp >= 0 {
			o.matches = m.results[s.retrieveOp].Matches // valid until this memory's next Apply
		}
		if s.storeOp >= 0 {
			res := &m.results[s.storeOp]
			o.evicted, o.hasEvicted = res.Evicted, res.HasEvicted
		}
		if s.forgetOp >= 0 {
			o.found = m.results[s.forgetOp].Found
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
