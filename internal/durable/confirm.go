package durable

import (
	"context"
	"errors"
	"github.com/pelm-dev/pelm/wire"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// doneEntry is the result of an effectful request, kept for replays until
// its request is confirmed gone and no stale copy of it can come back.
type doneEntry struct {
	Result
	seq       uint64
	rec       *journalRec // the journal record that holds it durably
	confirmed bool        // its request is known acknowledged
}

// retiring is a done record whose request is acked and whose durable copy
// is deleted. JetStream may still have redelivered that request before it
// saw the ack: such a copy sits in the pull buffer, which holds at most the
// prefetch, so the record is kept until that many more messages have come.
type retiring struct {
	seq   uint64
	after uint64 // s.consumed past which no stale copy can still arrive
}

func (s *Store) retire(seq uint64) {
	s.retiring = append(s.retiring, retiring{seq: seq, after: s.consumed + uint64(s.cfg.RetireAfter)})
}

// confirmed is called once the request seq is known gone from the requests
// stream: its result need not be kept durably any more. A journal record is
// purged once all its results are confirmed and its effects materialised.
func (s *Store) confirmed(seq uint64) {
	e := s.done[seq]
	if e == nil || e.confirmed {
		return
	}
	e.rec.unconfirmed--
	s.retire(seq)
	e.confirmed = true
}

// retireDone forgets the in-memory done records whose time has passed.
func (s *Store) retireDone() {
	n := 0
	for n < len(s.retiring) && s.retiring[n].after < s.consumed {
		seq := s.retiring[n].seq
		if e := s.done[seq]; e != nil && len(s.freeDone) < maxFreeDone {
			s.freeDone = append(s.freeDone, e)
		}
		delete(s.done, seq)
		n++
	}
	s.retiring = append(s.retiring[:0], s.retiring[n:]...)
}

// maxFreeDone bounds the retired done entries kept for reuse.
const maxFreeDone = 4096

// newDone returns a done entry to fill, a retired one when there is one:
// with its body buffer, that saves two allocations per effectful request.
func (s *Store) newDone() *doneEntry {
	if n := len(s.freeDone); n > 0 {
		e := s.freeDone[n-1]
		s.freeDone = s.freeDone[:n-1]
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
func (s *Store) confirmAcks(force bool) {
	if len(s.acked) == 0 || (!force && time.Since(s.checked) < 250*time.Millisecond) {
		return
	}
	s.checked = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	st, first, err := s.requestsFloor(ctx)
	if err != nil {
		return // try again later
	}
	old := time.Now().Add(-10 * time.Second)
	keep, looked := s.acked[:0], 0
	for _, a := range s.acked {
		switch {
		case a.seq < first:
			s.confirmed(a.seq)
		case a.at.Before(old) && looked < 256:
			looked++
			if _, err := st.GetMsg(ctx, a.seq); errors.Is(err, jetstream.ErrMsgNotFound) {
				s.confirmed(a.seq)
				continue
			}
			keep = append(keep, a)
		default:
			keep = append(keep, a)
		}
	}
	s.acked = keep
	s.purgeJournal()
}

// requestsFloor returns the requests stream and its floor: every request
// below it is gone (acknowledged), since the stream is a work queue.
func (s *Store) requestsFloor(ctx context.Context) (jetstream.Stream, uint64, error) {
	st, err := s.js.Stream(ctx, wire.RequestsStream) // asks the server for the stream's info
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
func (s *Store) purgeJournal() {
	n := 0
	for n < len(s.jrecs) {
		r := s.jrecs[n]
		if r.unconfirmed > 0 || !s.matMark.covers(r.last, r.entries-1) {
			break
		}
		n++
	}
	if n > 0 {
		s.purgeTo = s.jrecs[n-1].last + 1
		s.jrecs = append(s.jrecs[:0], s.jrecs[n:]...)
	}
	if s.purgeTo <= s.purged || !s.purging.CompareAndSwap(false, true) {
		return
	}
	keep := s.purgeTo
	s.purged = keep
	s.purges.Go(func() {
		defer s.purging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		st, err := s.js.Stream(ctx, JournalStream)
		if err == nil {
			err = st.Purge(ctx, jetstream.WithPurgeSequence(keep))
		}
		if err != nil {
			s.log.Warn().Err(err).Uint64("below", keep).Msg("purge journal; a later purge will cover it")
		}
	})
}
