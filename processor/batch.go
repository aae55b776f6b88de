package processor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
)

// Header names of PROTOCOL.md.
const (
	hdrMsgID       = "Nats-Msg-Id"
	hdrReplyTo     = "Pelm-Reply-To"
	hdrContentType = "Content-Type"
	hdrRequestID   = "Pelm-Request-Id"
	hdrSeq         = "Pelm-Seq"
	hdrError       = "Pelm-Error"
)

// slot is one message of a batch and everything derived from it. Slots are
// reused from batch to batch.
type slot struct {
	msg     jetstream.Msg
	ts      time.Time // when the stream stored the request
	replyTo string    // a checked Pelm-Reply-To, or ""
	mem     *memory
	req     Request
	out     outcome
	meta    []byte // tagged meta handed to the memory on store

	retrieveOp, storeOp, forgetOp int // indices into mem.ops, or -1
}

func (s *slot) fail(e *RequestError) { s.out.err = e }

// prepare decodes and validates one message; on failure s.out.err is set.
func (p *Processor) prepare(s *slot, msg jetstream.Msg) {
	s.msg, s.replyTo, s.mem = msg, "", nil
	s.retrieveOp, s.storeOp, s.forgetOp = -1, -1, -1
	s.out.reset()
	o := &s.out

	if md, err := msg.Metadata(); err == nil {
		o.seq, s.ts = md.Sequence.Stream, md.Timestamp
	} else {
		s.ts = time.Now()
	}
	h := msg.Headers()
	o.reqID = h.Get(hdrMsgID)
	// The encoding comes first so that even an error result speaks the
	// client's encoding.
	ct := h.Get(hdrContentType)
	enc, known := encodingOf(ct)
	o.enc = enc
	rt := parseSubject(msg.Subject(), p.reqPrefix)
	o.memory, o.opName, o.op = rt.memory, rt.opName, rt.op
	if rt.err != nil {
		s.fail(rt.err)
		return
	}
	if to := h.Get(hdrReplyTo); to != "" {
		if e := p.rules.check(to); e != nil {
			s.fail(e)
			return
		}
		s.replyTo = to
	}
	if !known {
		s.fail(reqErr(CodeBadEncoding, "Content-Type %q: want application/msgpack or application/json", ct))
		return
	}
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
	if e == nil {
		s.mem, e = p.memoryFor(o.memory)
	}
	if e != nil {
		s.fail(e)
	}
}

// plan runs the filter for a memory's requests in stream order and turns
// them into memory operations.
func (p *Processor) plan(m *memory) {
	m.ops = m.ops[:0]
	for _, i := range m.reqs {
		s := &p.slots[i]
		r, o := &s.req, &s.out
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
		}
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

// handleBatch runs one batch: decode, filter and execute per memory in
// stream order, publish every result, then acknowledge.
func (p *Processor) handleBatch(batch []jetstream.Msg) {
	start := time.Now()
	if cap(p.slots) < len(batch) {
		p.slots = append(p.slots[:cap(p.slots)], make([]slot, len(batch)-cap(p.slots))...)
	}
	p.slots = p.slots[:len(batch)]
	for _, m := range p.order {
		m.reqs = m.reqs[:0]
	}
	for i, msg := range batch {
		s := &p.slots[i]
		p.prepare(s, msg)
		if s.out.err == nil {
			s.mem.reqs = append(s.mem.reqs, i)
		}
	}
	for _, m := range p.order {
		if len(m.reqs) > 0 {
			p.plan(m)
			p.execute(m)
		}
	}
	p.publish(start)
}

// publish sends every result and dead letter of the batch, waits until the
// server has them, then acks (or terminates) each request.
func (p *Processor) publish(start time.Time) {
	var dlq []jetstream.PubAckFuture
	published := uint64(0)
	for i := range p.slots {
		s := &p.slots[i]
		o := &s.out
		now := time.Now()
		o.batch = len(p.slots)
		o.queueUS = start.Sub(s.ts).Microseconds()
		o.processUS = now.Sub(start).Microseconds()
		o.totalUS = now.Sub(s.ts).Microseconds()

		subject := s.replyTo
		if subject == "" {
			subject = p.resPrefix + o.memory + "." + o.opName
		}
		p.pubHdr.set(o)
		p.pubMsg.Subject, p.pubMsg.Data = subject, p.renc.encode(o)
		if err := p.nc.PublishMsg(&p.pubMsg); err != nil {
			p.log.Warn().Err(err).Str("subject", subject).Msg("publish result")
		} else {
			published++
		}
		if o.err != nil {
			f, err := p.js.PublishMsgAsync(p.deadLetter(s))
			if err != nil {
				p.log.Warn().Err(err).Uint64("seq", o.seq).Msg("publish dead letter")
			}
			dlq = append(dlq, f)
		}
	}
	flushErr := p.nc.FlushTimeout(flushTimeout)
	if flushErr != nil {
		p.log.Warn().Err(flushErr).Int("batch", len(p.slots)).Msg("flush results")
	}
	st := batchStats{results: published}
	for i := range p.slots {
		s := &p.slots[i]
		o := &s.out
		st.add(o)
		switch {
		case flushErr != nil:
			// The results may not have reached the server: let the requests
			// be redelivered rather than acknowledge what was not answered.
			_ = s.msg.NakWithDelay(time.Second)
		case o.err == nil:
			_ = s.msg.Ack()
		default:
			f := dlq[0]
			dlq = dlq[1:]
			if waitPubAck(f) {
				_ = s.msg.Term()
			} else {
				_ = s.msg.NakWithDelay(time.Second)
			}
		}
	}
	p.stats.record(&st, p.slots, p.order)
	p.log.Debug().Int("size", len(p.slots)).Uint64("errors", st.errors).
		Dur("took", time.Since(start)).Msg("batch")
}

const flushTimeout = 5 * time.Second

func waitPubAck(f jetstream.PubAckFuture) bool {
	if f == nil {
		return false
	}
	select {
	case <-f.Ok():
		return true
	case <-f.Err():
		return false
	case <-time.After(flushTimeout):
		return false
	}
}

// deadLetter is the DLQ copy of a refused request: its bytes and headers,
// with the reason in Pelm-Error.
func (p *Processor) deadLetter(s *slot) *nats.Msg {
	o := &s.out
	h := nats.Header{}
	for k, v := range s.msg.Headers() {
		h[k] = append([]string(nil), v...)
	}
	if id := h.Get(hdrMsgID); id != "" {
		h.Set(hdrRequestID, id)
	}
	h.Set(hdrMsgID, "dlq-"+strconv.FormatUint(o.seq, 10)) // a redelivered request is one dead letter
	h.Set(hdrError, o.err.Error())
	h.Set(hdrSeq, strconv.FormatUint(o.seq, 10))
	return &nats.Msg{Subject: p.dlqPrefix + o.memory + "." + o.opName, Header: h, Data: s.msg.Data()}
}

// resultHeader is the reused header of result messages: nats.go copies it
// into its buffer on publish.
type resultHeader struct {
	h                        nats.Header
	reqID, seq, msgID, ctype []string
	seqBuf                   []byte
}

func newResultHeader() resultHeader {
	rh := resultHeader{h: nats.Header{}, reqID: []string{""}, seq: []string{""}, msgID: []string{""}, ctype: []string{""}}
	rh.h[hdrSeq], rh.h[hdrMsgID], rh.h[hdrContentType] = rh.seq, rh.msgID, rh.ctype
	return rh
}

func (rh *resultHeader) set(o *outcome) {
	if o.reqID != "" {
		rh.reqID[0] = o.reqID
		rh.h[hdrRequestID] = rh.reqID
	} else {
		delete(rh.h, hdrRequestID)
	}
	seq := strconv.FormatUint(o.seq, 10)
	rh.seq[0] = seq
	rh.msgID[0] = "res-" + seq
	rh.ctype[0] = o.enc.ContentType()
}
