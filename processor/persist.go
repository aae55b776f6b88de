package processor

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// persist makes the batch's effects durable before any of its requests is
// acknowledged: one journal record holds every effectful request, in
// stream order, with its effects and its result. Their item changes are
// then queued for materialising, which does not hold up the batch.
func (p *Processor) persist() error {
	n := 0
	for i := range p.slots {
		if p.slots[i].effectful() {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	first, last, err := p.journal.write(ctx, p.encodeJournal(&p.jenc, n))
	if err != nil {
		return err
	}
	rec := &journalRec{first: first, last: last, entries: n, unconfirmed: n}
	p.jrecs = append(p.jrecs, rec)
	k := 0
	for i := range p.slots {
		s := &p.slots[i]
		if !s.effectful() {
			continue
		}
		o := &s.out
		e := p.newDone()
		*e = doneEntry{seq: o.seq, memory: o.memory, subject: s.subject, ctype: o.contentType(), reqID: o.reqID,
			body: append(e.body[:0], s.body...), rec: rec}
		p.done[o.seq] = e
		ef := effect{m: s.mem, seq: o.seq, decided: o.decided,
			filter: filterRecord{Threshold: s.filterAfter.Threshold, EMA: s.filterAfter.EMA, Seq: o.seq}}
		if s.storeOp >= 0 {
			p.item = itemRecord{ID: o.id, Vector: s.vecLE, Phase: s.req.Phase, // encoded by encodeJournal
				Confidence: s.req.Confidence, Meta: s.meta, Seq: o.seq}
			ef.store = &p.item
			ef.evicted, ef.hasEvict = o.evicted, o.hasEvicted
		}
		if s.forgetOp >= 0 {
			ef.forgot, ef.found = o.id, o.found
		}
		k++
		p.queueEffect(&ef, journalMark{Record: last, Entries: k})
	}
	return nil
}

// retiring is a done record whose request is acked and whose durable copy
// is deleted. JetStream may still have redelivered that request before it
// saw the ack: such a copy sits in the pull buffer, which holds at most the
// prefetch, so the record is kept until that many more messages have come.
type retiring struct {
	seq   uint64
	after uint64 // p.consumed past which no stale copy can still arrive
}

func (p *Processor) retireAfter() uint64 { return uint64(4 * p.cfg.Batch.MaxSize) }

func (p *Processor) retire(seq uint64) {
	p.retiring = append(p.retiring, retiring{seq: seq, after: p.consumed + p.retireAfter()})
}

// confirmed is called once the request seq is known gone from the requests
// stream: its result need not be kept durably any more. A legacy done
// record is removed with the next commit; a journal record is purged once
// all its results are confirmed and its effects materialised.
func (p *Processor) confirmed(seq uint64) {
	e := p.done[seq]
	switch {
	case e == nil || e.confirmed:
		return
	case e.rec == nil:
		p.pendingDelete = append(p.pendingDelete, seq)
	default:
		e.rec.unconfirmed--
		p.retire(seq)
	}
	e.confirmed = true
}

// retireDone forgets the in-memory done records whose time has passed.
func (p *Processor) retireDone() {
	n := 0
	for n < len(p.retiring) && p.retiring[n].after < p.consumed {
		seq := p.retiring[n].seq
		if e := p.done[seq]; e != nil && len(p.freeDone) < maxFreeDone {
			p.freeDone = append(p.freeDone, e)
		}
		delete(p.done, seq)
		n++
	}
	p.retiring = append(p.retiring[:0], p.retiring[n:]...)
}

// maxFreeDone bounds the retired done entries kept for reuse.
const maxFreeDone = 4096

// newDone returns a done entry to fill, a retired one when there is one:
// with its body buffer, that saves two allocations per effectful request.
func (p *Processor) newDone() *doneEntry {
	if n := len(p.freeDone); n > 0 {
		e := p.freeDone[n-1]
		p.freeDone = p.freeDone[:n-1]
		return e
	}
	return &doneEntry{}
}

// ackedSeq is an acknowledged request whose done record waits until the
// request is seen gone from the requests stream.
type ackedSeq struct {
	seq uint64
	at  time.Time
}

// confirmAcks moves to deletion the done records of acknowledged requests
// that the work-queue stream has removed. A flush cannot vouch for an ack:
// a server shutting down answers pings after JetStream has stopped taking
// acks, and an ack lost that way brings the request back after a restart.
// The stream's first sequence can: everything below it is gone. Requests
// above it (behind one that is still pending) are looked up one by one once
// they are ten seconds old, at most 256 per call. It runs at most every
// 250 ms.
func (p *Processor) confirmAcks(force bool) {
	if len(p.acked) == 0 || (!force && time.Since(p.ackChecked) < 250*time.Millisecond) {
		return
	}
	p.ackChecked = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	st, first, err := p.requestsFloor(ctx)
	if err != nil {
		return // try again later
	}
	old := time.Now().Add(-10 * time.Second)
	keep, looked := p.acked[:0], 0
	for _, a := range p.acked {
		switch {
		case a.seq < first:
			p.confirmed(a.seq)
		case a.at.Before(old) && looked < 256:
			looked++
			if _, err := st.GetMsg(ctx, a.seq); errors.Is(err, jetstream.ErrMsgNotFound) {
				p.confirmed(a.seq)
				continue
			}
			keep = append(keep, a)
		default:
			keep = append(keep, a)
		}
	}
	p.acked = keep
	p.purgeJournal()
}

// requestsFloor returns the requests stream and its floor: every request
// below it is gone (acknowledged), since the stream is a work queue.
func (p *Processor) requestsFloor(ctx context.Context) (jetstream.Stream, uint64, error) {
	st, err := p.js.Stream(ctx, RequestsStream) // asks the server for the stream's info
	if err != nil {
		return nil, 0, err
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		return st, state.LastSeq + 1, nil
	}
	return st, state.FirstSeq, nil
}

// purgeJournal drops the journal records that are materialised and whose
// results are all confirmed, oldest first, and purges them from the stream
// in the background (one purge at a time; a later one covers what an
// earlier skipped).
func (p *Processor) purgeJournal() {
	n := 0
	for n < len(p.jrecs) {
		r := p.jrecs[n]
		if r.unconfirmed > 0 || !p.matMark.covers(r.last, r.entries-1) {
			break
		}
		n++
	}
	if n > 0 {
		p.purgeTo = p.jrecs[n-1].last + 1
		p.jrecs = append(p.jrecs[:0], p.jrecs[n:]...)
	}
	if p.purgeTo <= p.purged || !p.purging.CompareAndSwap(false, true) {
		return
	}
	keep := p.purgeTo
	p.purged = keep
	p.purges.Go(func() {
		defer p.purging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		st, err := p.js.Stream(ctx, JournalStream)
		if err == nil {
			err = st.Purge(ctx, jetstream.WithPurgeSequence(keep))
		}
		if err != nil {
			p.log.Warn().Err(err).Uint64("below", keep).Msg("purge journal; a later purge will cover it")
		}
	})
}
