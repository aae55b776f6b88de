package processor

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Materialising: the per-item layout of PELM_STATE follows the journal.
// Each journalled request's item changes (its put, the eviction it caused,
// its forget) are queued in an epoch, in journal order, with the filter
// states they leave. An epoch is sealed after materializeEvery or near the
// atomic batch limit, always at a request boundary, and committed as one
// atomic batch whose commit message records the journal mark it reaches.
// Epochs are committed one at a time in the background; the batch loop
// only waits when more than maxSealed are waiting (the server is behind).
// Once an epoch is committed, the journal records it completed whose
// results are all confirmed are purged.
const (
	materializeEvery = time.Second
	sealAt           = 600 // messages: an epoch is sealed once it holds this many
	maxSealed        = 4
)

type epochMsg struct {
	subject  string
	tomb     bool
	off, end int // data in epoch.buf
}

type epochFilter struct {
	m   *memory
	rec filterRecord
}

// epoch is a run of journalled requests whose item changes are committed
// together.
type epoch struct {
	msgs    []epochMsg
	buf     []byte
	filters []epochFilter // latest state per memory, in first-touch order
	mark    journalMark   // the journal position after its last request
	lastReq uint64
	opened  time.Time
}

func (e *epoch) reset() {
	e.msgs, e.buf, e.filters, e.mark, e.lastReq, e.opened = e.msgs[:0], e.buf[:0], e.filters[:0], journalMark{}, 0, time.Time{}
}

func (e *epoch) empty() bool { return e.mark == journalMark{} }

// size is the messages its commit takes: the changes, the filter records
// and the commit message.
func (e *epoch) size() int { return len(e.msgs) + len(e.filters) + 1 }

func (e *epoch) put(subject string, data []byte) {
	off := len(e.buf)
	e.buf = append(e.buf, data...)
	e.msgs = append(e.msgs, epochMsg{subject: subject, off: off, end: len(e.buf)})
}

func (e *epoch) tombstone(subject string) {
	e.msgs = append(e.msgs, epochMsg{subject: subject, tomb: true})
}

func (e *epoch) filter(m *memory, rec filterRecord) {
	for i := range e.filters {
		if e.filters[i].m == m {
			e.filters[i].rec = rec
			return
		}
	}
	e.filters = append(e.filters, epochFilter{m: m, rec: rec})
}

// materializer holds the open epoch and the sealed ones, oldest first;
// sealed[0] is the one in flight when sent is set.
type materializer struct {
	every  time.Duration // materializeEvery; tests set it
	open   *epoch
	sealed []*epoch
	free   []*epoch

	sent    bool
	sentAt  time.Time
	sendN   int    // numbers the commits, so a late reply is recognised
	reply   string // the reply subject of the commit in flight
	inbox   string
	replies chan *nats.Msg
	sub     *nats.Subscription
	msgs    int       // messages of the commit in flight, for its reply check
	retryAt time.Time // after a failed commit, when to send it again
}

// effect is one journalled request's item changes, as materialize takes
// them from a batch or from a restored journal entry.
type effect struct {
	m        *memory
	seq      uint64
	decided  bool
	filter   filterRecord
	store    *itemRecord // the stored item, or nil
	evicted  string      // an item the store evicted
	hasEvict bool
	forgot   string // the id a forget removed
	found    bool
}

// queueEffect adds one request's changes to the open epoch, sealing it
// first if they might not fit; at is the journal position after it.
func (p *Processor) queueEffect(ef *effect, at journalMark) {
	mt := &p.mat
	e := mt.open
	if e.size()+3 > maxAtomicBatch-maxDeletesPerCommit {
		p.seal()
		e = mt.open
	}
	if e.empty() {
		e.opened = time.Now()
	}
	if ef.store != nil {
		e.put(p.subj.item(ef.m.name, ef.store.ID), p.committer.rec.item(ef.store))
		if ef.hasEvict {
			e.tombstone(p.subj.item(ef.m.name, ef.evicted))
		}
	}
	if ef.found {
		e.tombstone(p.subj.item(ef.m.name, ef.forgot))
	}
	if ef.decided {
		e.filter(ef.m, ef.filter)
	}
	e.mark, e.lastReq = at, ef.seq
}

// seal closes the open epoch, if it holds anything.
func (p *Processor) seal() {
	mt := &p.mat
	if mt.open.empty() {
		return
	}
	mt.sealed = append(mt.sealed, mt.open)
	if n := len(mt.free); n > 0 {
		mt.open, mt.free = mt.free[n-1], mt.free[:n-1]
	} else {
		mt.open = &epoch{}
	}
}

// materialize seals the open epoch when it is due and moves the commits
// along: it collects the reply of the one in flight and sends the next.
// It waits for replies while more than maxSealed epochs wait, or, with
// drain, until every epoch is committed or a commit fails.
func (p *Processor) materialize(drain bool) error {
	mt := &p.mat
	if e := mt.open; !e.empty() && (drain || e.size() >= sealAt || time.Since(e.opened) >= mt.every) {
		p.seal()
	}
	for {
		if mt.sent {
			wait := drain || len(mt.sealed) > maxSealed
			done, err := p.collect(wait)
			if err != nil {
				p.metrics.materializeFailed()
				p.log.Warn().Err(err).Msg("materialise state; will try again")
				if drain {
					return err
				}
				mt.retryAt = time.Now().Add(time.Second)
			}
			if !done {
				return nil
			}
		}
		if len(mt.sealed) == 0 || (!drain && time.Now().Before(mt.retryAt)) {
			return nil
		}
		if err := p.send(mt.sealed[0]); err != nil {
			p.metrics.materializeFailed()
			p.log.Warn().Err(err).Msg("materialise state; will try again")
			return err
		}
	}
}

// send publishes an epoch as an atomic batch and its commit with a reply
// subject of its own, without waiting.
func (p *Processor) send(e *epoch) error {
	mt := &p.mat
	if mt.sub == nil {
		mt.inbox = nats.NewInbox()
		mt.replies = make(chan *nats.Msg, 8)
		sub, err := p.nc.ChanSubscribe(mt.inbox+".*", mt.replies)
		if err != nil {
			return fmt.Errorf("processor: materialise: %w", err)
		}
		mt.sub = sub
	}
	c := &p.committer
	c.begin()
	// Removals of legacy done records ride along, as many as fit.
	deletes := p.pendingDelete[:min(len(p.pendingDelete), maxDeletesPerCommit, maxAtomicBatch-e.size())]
	for _, seq := range deletes {
		if d := p.done[seq]; d != nil {
			if err := c.tombstone(p.subj.done(d.memory, seq)); err != nil {
				return err
			}
		}
	}
	for _, m := range e.msgs {
		var err error
		if m.tomb {
			err = c.tombstone(m.subject)
		} else {
			err = c.add(m.subject, e.buf[m.off:m.end])
		}
		if err != nil {
			return err
		}
	}
	for _, f := range e.filters {
		if err := c.add(p.subj.filter(f.m.name), c.rec.filter(&f.rec)); err != nil {
			return err
		}
	}
	mt.sendN++
	mt.reply = mt.inbox + "." + strconv.Itoa(mt.sendN)
	if err := c.commitAsync(e.lastReq, e.mark, mt.reply); err != nil {
		return err
	}
	for _, seq := range deletes {
		p.retire(seq)
	}
	p.pendingDelete = append(p.pendingDelete[:0], p.pendingDelete[len(deletes):]...)
	mt.sent, mt.sentAt, mt.msgs = true, time.Now(), c.n
	return nil
}

// collect takes the reply of the commit in flight, waiting for it when
// wait is set; done reports that the commit is over, committed or not. A
// commit that fails or goes unanswered stays first in line and is sent
// again: committing an epoch twice leaves the same state.
func (p *Processor) collect(wait bool) (done bool, err error) {
	mt := &p.mat
	var timeout <-chan time.Time
	if wait {
		t := time.NewTimer(max(0, stateTimeout-time.Since(mt.sentAt)))
		defer t.Stop()
		timeout = t.C
	}
	for {
		var r *nats.Msg
		if wait {
			select {
			case r = <-mt.replies:
			case <-timeout:
				mt.sent = false
				return true, errNoCommitReply
			}
		} else {
			select {
			case r = <-mt.replies:
			default:
				if time.Since(mt.sentAt) > stateTimeout {
					mt.sent = false
					return true, errNoCommitReply
				}
				return false, nil
			}
		}
		if r.Subject != mt.reply {
			continue // the late reply of a commit given up on
		}
		mt.sent = false
		if err := parseCommitReply(r.Data, mt.msgs); err != nil {
			return true, err
		}
		p.committed(mt.sealed[0])
		return true, nil
	}
}

var errNoCommitReply = fmt.Errorf("processor: materialise: no reply to a commit within %v", stateTimeout)

// committed retires the oldest sealed epoch, now durable, and purges what
// of the journal is no longer needed.
func (p *Processor) committed(e *epoch) {
	mt := &p.mat
	p.matMark = e.mark
	mt.sealed = mt.sealed[1:]
	e.reset()
	mt.free = append(mt.free, e)
	p.purgeJournal()
}

// parseCommitReply checks the server's answer to an atomic batch commit
// of n messages.
func parseCommitReply(data []byte, n int) error {
	var ack struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Count int `json:"count"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return fmt.Errorf("processor: commit state: bad reply %q: %w", data, err)
	}
	if ack.Error != nil {
		return fmt.Errorf("processor: commit state: %s (code %d)", ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.Count != n {
		return fmt.Errorf("processor: commit state: stored %d of %d messages", ack.Count, n)
	}
	return nil
}

// resetMaterializer forgets every epoch: the state is being rebuilt from
// what is durable. A commit in flight is waited for first, so that it
// cannot land behind the restore's back.
func (p *Processor) resetMaterializer() {
	mt := &p.mat
	if mt.sent {
		if _, err := p.collect(true); err != nil {
			p.log.Warn().Err(err).Msg("materialise state")
		}
	}
	for _, e := range mt.sealed {
		e.reset()
		mt.free = append(mt.free, e)
	}
	mt.sealed = mt.sealed[:0]
	mt.open.reset() // New made it
}
