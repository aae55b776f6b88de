package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	memory string
	rec    filterRecord
}

// epoch is a run of journalled requests whose item changes are committed
// together.
type epoch struct {
	msgs    []epochMsg
	buf     []byte
	filters []epochFilter // latest state per memory, in first-touch order
	purges  []string      // memories dropped before this epoch: purged before it is committed
	mark    journalMark   // the journal position after its last request
	lastReq uint64
	opened  time.Time
}

func (e *epoch) reset() {
	e.msgs, e.buf, e.filters, e.purges, e.mark, e.lastReq, e.opened = e.msgs[:0], e.buf[:0], e.filters[:0], e.purges[:0], journalMark{}, 0, time.Time{}
}

func (e *epoch) empty() bool { return e.mark == journalMark{} && len(e.msgs) == 0 }

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

func (e *epoch) filter(memory string, rec filterRecord) {
	for i := range e.filters {
		if e.filters[i].memory == memory {
			e.filters[i].rec = rec
			return
		}
	}
	e.filters = append(e.filters, epochFilter{memory: memory, rec: rec})
}

// materializer holds the open epoch and the sealed ones, oldest first;
// sealed[0] is the one in flight when sent is set.
type materializer struct {
	committer committer
	every     time.Duration // Config.MaterializeEvery
	open      *epoch
	sealed    []*epoch
	free      []*epoch

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

// queue adds one journalled request's item changes to the open epoch,
// sealing it first if they might not fit; vecLE is a store's vector as
// little-endian bytes, at the journal position after the request.
func (s *Store) queue(en *Entry, vecLE []byte, at journalMark) {
	mt := &s.mat
	e := mt.open
	if e.size()+4 > maxAtomicBatch || en.Kind == KindDrop {
		// A drop purges the memory's subjects: what came before it is
		// committed first, what comes after it behind the purge.
		s.seal()
		e = mt.open
	}
	if e.empty() {
		e.opened = time.Now()
	}
	if en.Created != nil {
		e.put(s.subj.config(en.Memory), s.rec.configRecord(en.Created))
	}
	switch en.Kind {
	case KindDrop:
		e.purges = append(e.purges, en.Memory)
	case KindStore:
		s.item = itemRecord{ID: en.ID, Vector: vecLE, Phase: en.Phase, Confidence: en.Confidence, Meta: en.Meta, Seq: en.Seq,
			Time: en.Time, Expires: en.Expires}
		e.put(s.subj.item(en.Memory, en.ID), s.rec.item(&s.item))
		if en.HasEvicted {
			e.tombstone(s.subj.item(en.Memory, en.Evicted))
		}
	case KindForget:
		if en.Found {
			e.tombstone(s.subj.item(en.Memory, en.ID))
		}
	}
	for _, id := range en.Expired {
		e.tombstone(s.subj.item(en.Memory, id))
	}
	if en.Decided {
		e.filter(en.Memory, filterRecord{Threshold: en.Filter.Threshold, EMA: en.Filter.EMA, Seq: en.Seq})
	}
	e.mark, e.lastReq = at, en.Seq
}

// seal closes the open epoch, if it holds anything.
func (s *Store) seal() {
	mt := &s.mat
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
func (s *Store) materialize(drain bool) error {
	mt := &s.mat
	if e := mt.open; !e.empty() && (drain || e.size() >= sealAt || time.Since(e.opened) >= mt.every) {
		s.seal()
	}
	for {
		if mt.sent {
			wait := drain || len(mt.sealed) > maxSealed
			done, err := s.collect(wait)
			if errors.Is(err, errRefused) && s.fenceMoved() {
				s.fenced.Store(true)
				return fmt.Errorf("%w: %w", ErrFenced, err) // another process owns the partition: never try again
			}
			if err != nil {
				s.failures.Add(1)
				s.log.Warn().Err(err).Msg("materialise state; will try again")
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
		if s.fenced.Load() {
			return ErrFenced
		}
		if err := s.send(mt.sealed[0]); err != nil {
			s.failures.Add(1)
			s.log.Warn().Err(err).Msg("materialise state; will try again")
			return err
		}
	}
}

// send publishes an epoch as an atomic batch and its commit with a reply
// subject of its own, without waiting.
func (s *Store) send(e *epoch) error {
	mt := &s.mat
	if mt.sub == nil {
		mt.inbox = nats.NewInbox()
		mt.replies = make(chan *nats.Msg, 8)
		sub, err := s.nc.ChanSubscribe(mt.inbox+".*", mt.replies)
		if err != nil {
			return fmt.Errorf("durable: materialise: %w", err)
		}
		mt.sub = sub
	}
	if len(e.purges) > 0 {
		if err := s.purgeMemories(e.purges); err != nil {
			return err
		}
	}
	c := &mt.committer
	c.begin()
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
		if err := c.add(s.subj.filter(f.memory), s.rec.filter(&f.rec)); err != nil {
			return err
		}
	}
	mt.sendN++
	mt.reply = mt.inbox + "." + strconv.Itoa(mt.sendN)
	if err := c.commitAsync(e.lastReq, e.mark, mt.reply); err != nil {
		return err
	}
	mt.sent, mt.sentAt, mt.msgs = true, time.Now(), c.n
	return nil
}

// collect takes the reply of the commit in flight, waiting for it when
// wait is set; done reports that the commit is over, committed or not. A
// commit that fails or goes unanswered stays first in line and is sent
// again: committing an epoch twice leaves the same state.
func (s *Store) collect(wait bool) (done bool, err error) {
	mt := &s.mat
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
		s.committed(mt.sealed[0])
		return true, nil
	}
}

// errRefused is a commit the server refused on its fence check: fenced,
// if the fence moved (fenceMoved).
var errRefused = errors.New("durable: refused by the fence check")

var errNoCommitReply = fmt.Errorf("durable: materialise: no reply to a commit within %v", stateTimeout)

// committed retires the oldest sealed epoch, now durable, and purges what
// of the journal is no longer needed.
func (s *Store) committed(e *epoch) {
	mt := &s.mat
	s.matMark = e.mark
	mt.sealed = mt.sealed[1:]
	e.reset()
	mt.free = append(mt.free, e)
	s.purgeJournal()
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
		return fmt.Errorf("durable: commit state: bad reply %q: %w", data, err)
	}
	if ack.Error != nil {
		if refused(ack.Error.ErrCode) {
			return fmt.Errorf("%w: commit state: %s", errRefused, ack.Error.Description)
		}
		return fmt.Errorf("durable: commit state: %s (code %d)", ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.Count != n {
		return fmt.Errorf("durable: commit state: stored %d of %d messages", ack.Count, n)
	}
	return nil
}

// resetMaterializer forgets every epoch: the state is being rebuilt from
// what is durable. A commit in flight is waited for first, so that it
// cannot land behind the restore's back.
func (s *Store) resetMaterializer() {
	mt := &s.mat
	if mt.sent {
		if _, err := s.collect(true); err != nil {
			s.log.Warn().Err(err).Msg("materialise state")
		}
	}
	for _, e := range mt.sealed {
		e.reset()
		mt.free = append(mt.free, e)
	}
	mt.sealed = mt.sealed[:0]
	mt.open.reset() // New made it
}

// purgeMemories deletes every state message of the dropped memories. It
// runs before the epoch that follows the drop is committed, and again if
// that commit is retried: what it deletes is then written again.
func (s *Store) purgeMemories(mems []string) error {
	if !s.valid() {
		return ErrFenced // a purge cannot be fenced: never send one without the lease
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, StateStream)
	if err != nil {
		return fmt.Errorf("durable: drop: %w", err)
	}
	for _, m := range mems {
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(s.subj.memory(m))); err != nil {
			return fmt.Errorf("durable: drop memory %q: %w", m, err)
		}
	}
	return nil
}
