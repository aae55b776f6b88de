package processor

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// persist makes the batch's effects durable before any of its requests is
// acknowledged: for every effectful request, in stream order, its item
// changes and its result (the done record); for every memory, its filter
// state; and the removal of done records whose acks are confirmed.
func (p *Processor) persist() error {
	if !p.needsCommit() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	c := &p.committer
	c.begin()
	// At most maxDeletesPerCommit removals ride along with one commit, so
	// that they and the batch's own messages stay within one atomic batch's
	// limit; the rest wait for the next commit.
	deletes := p.pendingDelete[:min(len(p.pendingDelete), maxDeletesPerCommit)]
	for _, seq := range deletes {
		if d := p.done[seq]; d != nil {
			if err := c.tombstone(p.subj.done(d.memory, seq)); err != nil {
				return err
			}
		}
	}
	touched := p.touched[:0]
	var lastSeq uint64
	for i := range p.slots {
		s := &p.slots[i]
		if !s.effectful() {
			continue
		}
		// At most four messages for the request (a store's item and an
		// eviction, each perhaps displacing a result), one filter record
		// per memory of the chunk and the commit marker must still fit.
		if c.n+4+len(touched)+1+1 > maxAtomicBatch {
			if err := p.commitChunk(ctx, touched, lastSeq); err != nil {
				return err
			}
			touched = touched[:0]
			c.begin()
		}
		if err := p.writeEffects(c, s); err != nil {
			return err
		}
		m := s.mem
		if !m.inChunk {
			m.inChunk = true
			touched = append(touched, m)
		}
		if s.out.decided {
			m.chunkFilter, m.chunkDecided, m.chunkSeq = s.filterAfter, true, s.out.seq
		}
		lastSeq = s.out.seq
	}
	if err := p.commitChunk(ctx, touched, lastSeq); err != nil {
		return err
	}
	p.touched = touched[:0]
	// The durable records are gone; the in-memory ones stay a little longer
	// (see retireDone).
	for _, seq := range deletes {
		p.retire(seq)
	}
	p.pendingDelete = append(p.pendingDelete[:0], p.pendingDelete[len(deletes):]...)
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
// stream: its done record is removed with the next commit; a result that
// rides in its item's message needs no removal.
func (p *Processor) confirmed(seq uint64) {
	e := p.done[seq]
	if e == nil || e.item == "" {
		p.pendingDelete = append(p.pendingDelete, seq)
		return
	}
	if p.itemDone[e.item] == e {
		delete(p.itemDone, e.item)
	}
	p.retire(seq)
}

// retireDone forgets the in-memory done records whose time has passed.
func (p *Processor) retireDone() {
	n := 0
	for n < len(p.retiring) && p.retiring[n].after < p.consumed {
		delete(p.done, p.retiring[n].seq)
		n++
	}
	p.retiring = append(p.retiring[:0], p.retiring[n:]...)
}

func (p *Processor) needsCommit() bool {
	if len(p.pendingDelete) > 0 {
		return true
	}
	for i := range p.slots {
		if p.slots[i].effectful() {
			return true
		}
	}
	return false
}

// commitChunk writes the filter state of the chunk's memories and commits.
func (p *Processor) commitChunk(ctx context.Context, touched []*memory, lastSeq uint64) error {
	c := &p.committer
	for _, m := range touched {
		if m.chunkDecided {
			rec := filterRecord{Threshold: m.chunkFilter.Threshold, EMA: m.chunkFilter.EMA, Seq: m.chunkSeq}
			if err := c.add(p.subj.filter(m.name), c.rec.filter(&rec)); err != nil {
				return err
			}
		}
		m.inChunk, m.chunkDecided = false, false
	}
	return c.commit(ctx, lastSeq)
}

// writeEffects writes one request's item changes and its result: in the
// item's message for a store, else as a done record.
func (p *Processor) writeEffects(c *committer, s *slot) error {
	m, o := s.mem, &s.out
	e := &doneEntry{seq: o.seq, memory: o.memory, subject: s.subject, ctype: o.contentType(), reqID: o.reqID,
		body: append([]byte(nil), s.body...)}
	p.done[o.seq] = e
	if s.storeOp >= 0 {
		subject := p.subj.item(m.name, o.id)
		if err := p.displace(c, subject); err != nil {
			return err
		}
		rec := itemRecord{ID: o.id, Vector: appendVector(p.vecBuf[:0], s.req.Vector), Phase: s.req.Phase,
			Confidence: s.req.Confidence, Meta: s.meta, Seq: o.seq,
			Result: e.body, Subject: e.subject, CType: e.ctype, ReqID: e.reqID}
		p.vecBuf = rec.Vector
		if err := c.add(subject, c.rec.item(&rec)); err != nil {
			return err
		}
		e.item = subject
		p.itemDone[subject] = e
		if res := &m.results[s.storeOp]; res.HasEvicted {
			if err := p.removeItem(c, p.subj.item(m.name, res.Evicted)); err != nil {
				return err
			}
		}
		return nil
	}
	if s.forgetOp >= 0 && m.results[s.forgetOp].Found {
		if err := p.removeItem(c, p.subj.item(m.name, o.id)); err != nil {
			return err
		}
	}
	return c.done(e)
}

func (p *Processor) removeItem(c *committer, subject string) error {
	if err := p.displace(c, subject); err != nil {
		return err
	}
	return c.tombstone(subject)
}

// displace is called before the item message at subject is replaced: a
// result it still carries gets a done record of its own first.
func (p *Processor) displace(c *committer, subject string) error {
	e := p.itemDone[subject]
	if e == nil {
		return nil
	}
	delete(p.itemDone, subject)
	e.item = ""
	return c.done(e)
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
	st, err := p.js.Stream(ctx, RequestsStream)
	if err != nil {
		return // try again later
	}
	info, err := st.Info(ctx)
	if err != nil {
		return
	}
	first := info.State.FirstSeq
	if info.State.Msgs == 0 {
		first = info.State.LastSeq + 1
	}
	keep, looked := p.acked[:0], 0
	for _, a := range p.acked {
		switch {
		case a.seq < first:
			p.confirmed(a.seq)
		case time.Since(a.at) > 10*time.Second && looked < 256:
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
}
