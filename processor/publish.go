package processor

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/wire"
)

// Timeouts of the loop's calls to the server: a flush of the batch's
// results, one JetStream API call.
const (
	flushTimeout = 5 * time.Second
	apiTimeout   = 5 * time.Second
	stateTimeout = 10 * time.Second // a dead letter's copy, result and removal
)

// publishAndAck sends every result and dead letter of the batch, waits
// until the server has them, then acks (or terminates) each request.
func (p *partition) publishAndAck() {
	published, pubFailed, pubErr := uint64(0), 0, error(nil)
	gen := p.nc.Stats().Reconnects
	for i := range p.slots {
		s := &p.slots[i]
		o := &s.out
		if d := s.replay; d != nil {
			p.pubHdr.set(d.ReqID, o.Seq, d.ContentType)
		} else {
			p.pubHdr.set(o.ReqID, o.Seq, o.ContentType())
		}
		s.resAck, s.resLost, s.dlqAck = nil, false, nil
		if p.caps.captured(&p.capCache, s.subject) {
			// A stream stores it: publish through JetStream and wait for
			// the stream's PubAck before the ack. nats.go keeps the message
			// until then (and sends it again on a retry): it gets its own.
			msg := &nats.Msg{Subject: s.subject, Data: append([]byte(nil), s.body...), Header: p.pubHdr.clone()}
			if f, err := p.js.PublishMsgAsync(msg); err != nil {
				pubErr, pubFailed, s.resLost = err, pubFailed+1, true
			} else {
				s.resAck = f
				published++
			}
		} else {
			p.pubMsg.Subject, p.pubMsg.Data = s.subject, s.body
			if err := p.nc.PublishMsg(&p.pubMsg); err != nil {
				pubErr, pubFailed = err, pubFailed+1
			} else {
				published++
			}
		}
		if o.Err != nil && !s.applied && !s.replayed() {
			f, err := p.js.PublishMsgAsync(p.deadLetter(s))
			if err != nil {
				pubErr, pubFailed = err, pubFailed+1
			}
			s.dlqAck = f
		}
	}
	if pubFailed > 0 { // one line per batch, not per message
		p.log.Warn().Err(pubErr).Int("failed", pubFailed).Msg("publish results or dead letters")
	}
	p.hook(HookAfterPublish)
	flushErr := p.nc.FlushTimeout(flushTimeout)
	if flushErr == nil && p.nc.Stats().Reconnects != gen {
		// The flush went over a new connection: what was written to the old
		// one before it died may be lost.
		flushErr = errors.New("processor: reconnected while publishing results")
	}
	if flushErr != nil {
		p.log.Warn().Err(flushErr).Int("batch", len(p.slots)).Msg("flush results; the batch will be redelivered")
	}
	p.hook(HookBeforeAck)
	now := time.Now()
	st := batchStats{results: published}
	// One wait for all the batch's PubAcks: dead letters, and results
	// that a stream stores.
	ackCtx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	for i := range p.slots {
		s := &p.slots[i]
		o := &s.out
		st.add(o)
		switch {
		case flushErr != nil, s.resLost, s.resAck != nil && !waitPubAck(s.resAck, ackCtx.Done()):
			// The result may not have reached the server, or not the
			// stream that keeps it: let the request come back rather than
			// acknowledge what was not answered.
			p.nak(s)
		case o.Err == nil || s.applied || s.replayed():
			_ = s.msg.Ack()
			if s.applied || s.replay != nil {
				p.store.Acked(o.Seq, now)
			}
		default:
			if waitPubAck(s.dlqAck, ackCtx.Done()) {
				_ = s.msg.Term()
				p.metrics.deadLetter()
			} else {
				p.nak(s)
			}
		}
	}
	p.hook(HookAfterAck)
	p.stats.record(&st, p.slots, p.mems.order)
	p.metrics.observe(p.slots, p.mems.order, p.budget.total())
	p.log.Debug().Int("size", len(p.slots)).Uint64("errors", st.errors).Msg("batch")
}

// waitPubAck waits for f until deadline is closed.
func waitPubAck(f jetstream.PubAckFuture, deadline <-chan struct{}) bool {
	if f == nil {
		return false
	}
	select {
	case <-f.Ok():
		return true
	case <-f.Err():
		return false
	case <-deadline:
		return false
	}
}

// deadLetter is the DLQ copy of a refused request: its bytes and headers,
// with the reason in Pelm-Error.
func (p *partition) deadLetter(s *slot) *nats.Msg {
	o := &s.out
	return p.deadLetterOf(s.msg.Headers(), s.msg.Data(), o.Seq, o.Memory, o.OpName, o.Err.Error())
}

func (p *Processor) deadLetterOf(orig nats.Header, data []byte, seq uint64, memory, op, reason string) *nats.Msg {
	h := nats.Header{}
	for k, v := range orig {
		h[k] = append([]string(nil), v...)
	}
	if id := h.Get(wire.HeaderMsgID); id != "" {
		h.Set(wire.HeaderRequestID, id)
	}
	h.Set(wire.HeaderMsgID, "dlq-"+strconv.FormatUint(seq, 10)) // a redelivered request is one dead letter
	h.Set(wire.HeaderError, reason)
	h.Set(wire.HeaderSeq, strconv.FormatUint(seq, 10))
	return &nats.Msg{Subject: p.dlqPrefix + memory + "." + op, Header: h, Data: data}
}

// resultHeader is the reused header of result messages: nats.go copies it
// into its buffer on publish.
type resultHeader struct {
	h                        nats.Header
	reqID, seq, msgID, ctype []string
}

func newResultHeader() resultHeader {
	rh := resultHeader{h: nats.Header{}, reqID: []string{""}, seq: []string{""}, msgID: []string{""}, ctype: []string{""}}
	rh.h[wire.HeaderSeq], rh.h[wire.HeaderMsgID], rh.h[wire.HeaderContentType] = rh.seq, rh.msgID, rh.ctype
	return rh
}

// clone copies the header, for a message that nats.go keeps.
func (rh *resultHeader) clone() nats.Header {
	h := make(nats.Header, len(rh.h))
	for k, v := range rh.h {
		h[k] = []string{v[0]}
	}
	return h
}

func (rh *resultHeader) set(reqID string, seq uint64, contentType string) {
	if reqID != "" {
		rh.reqID[0] = reqID
		rh.h[wire.HeaderRequestID] = rh.reqID
	} else {
		delete(rh.h, wire.HeaderRequestID)
	}
	s := strconv.FormatUint(seq, 10)
	rh.seq[0] = s
	rh.msgID[0] = "res-" + s
	rh.ctype[0] = contentType
}

// resultSubject is the default results subject of a slot's request,
// built once per memory and op rather than once per result.
func (p *Processor) resultSubject(s *slot) string {
	o := &s.out
	if s.mem == nil || o.Op == wire.OpInvalid {
		return p.resPrefix + o.Memory + "." + o.OpName
	}
	if s.mem.resSubj[o.Op] == "" {
		s.mem.resSubj[o.Op] = p.resPrefix + o.Memory + "." + o.OpName
	}
	return s.mem.resSubj[o.Op]
}
