package durable

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/wire"
)

// The journal is the batch loop's write-ahead log: one record per batch,
// holding every effectful request's effects and result, written as one
// ordinary publish (a few parts when it exceeds the server's payload
// limit) to the stream PELM_JOURNAL. That is the only write a request
// waits for: a record costs one message where an atomic batch of the
// per-item state costs a fixed few milliseconds more (BenchmarkStateCommit).
// The per-item layout of PELM_STATE is brought up to date behind it
// (materialize.go) and the journal is purged behind that.
const (
	JournalStream = "PELM_JOURNAL"

	hdrPart = "Pelm-Part" // "i/n": part i of a record of n parts
)

func journalStreamConfig(prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:      JournalStream,
		Subjects:  []string{prefix + ".journal", prefix + ".journal.>"},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
		Discard:   jetstream.DiscardOld,
	}
}

// journalEntry is one effectful request as the journal holds it.
type journalEntry struct {
	Seq       uint64  `msgpack:"s"`
	Memory    string  `msgpack:"m"`
	Kind      uint8   `msgpack:"k"`
	Decided   bool    `msgpack:"d"`   // the filter decided: Threshold and EMA are its state after
	Threshold float64 `msgpack:"t"`   //
	EMA       float64 `msgpack:"ema"` //

	ID         string  `msgpack:"id"`
	Vector     []byte  `msgpack:"v"` // a store's vector as the request sent it, little-endian float32
	Phase      float64 `msgpack:"p"`
	Confidence float64 `msgpack:"c"`
	Meta       []byte  `msgpack:"mt"` // tagged, see metaTag

	Result  []byte `msgpack:"r"`
	Subject string `msgpack:"rs"`
	CType   string `msgpack:"rc"`
	ReqID   string `msgpack:"ri"`

	// Created holds the settings of the memory the request created (a
	// create, or the first store or process of a memory); absent otherwise
	// and in records of earlier versions.
	Created *wire.MemoryConfig `msgpack:"cf,omitempty"`

	Time    int64 `msgpack:"tm"` // the request's stream time, Unix ns
	Expires int64 `msgpack:"x"`  // a store's expiry, Unix ns; 0: never
}

type journalRecord struct {
	Entries []journalEntry `msgpack:"e"`
}

// heldRecord is what the store remembers of a record while it is in
// the journal: where it lies and whether it may be purged.
type heldRecord struct {
	first, last uint64 // stream sequences of its first and last parts
	entries     int
	unconfirmed int // its results whose requests may still come back
}

// journalMark is a position in the journal: the first entries of the
// record whose last part is at sequence record. The per-item state holds
// exactly the effects of everything before it.
type journalMark struct {
	Record  uint64 `msgpack:"r"`
	Entries int    `msgpack:"n"`
}

// covers reports whether the entry at index i of the record ending at last
// is before the mark.
func (m journalMark) covers(last uint64, i int) bool {
	return last < m.Record || (last == m.Record && i < m.Entries)
}

// encodeJournal writes the record of a batch's entries, converting each
// store's vector to little-endian bytes once (s.vecs[i]), for the journal
// and for the per-item state.
func (s *Store) encodeJournal(entries []Entry) []byte {
	e := &s.jenc
	enc := e.start()
	e.check(enc.EncodeMapLen(1))
	e.check(enc.EncodeString("e"))
	e.check(enc.EncodeArrayLen(len(entries)))
	for len(s.vecs) < len(entries) {
		s.vecs = append(s.vecs, nil)
	}
	for i := range entries {
		en := &entries[i]
		s.vecs[i] = s.vecs[i][:0]
		if en.Kind == KindStore {
			s.vecs[i] = appendVector(s.vecs[i], en.Vector)
		}
		fields := 17
		if en.Created != nil {
			fields++
		}
		e.check(enc.EncodeMapLen(fields))
		e.u64("s", en.Seq)
		e.str("m", en.Memory)
		e.u64("k", uint64(en.Kind))
		e.check(enc.EncodeString("d"))
		e.check(enc.EncodeBool(en.Decided))
		e.f64("t", en.Filter.Threshold)
		e.f64("ema", en.Filter.EMA)
		e.str("id", en.ID)
		e.bin("v", s.vecs[i])
		e.f64("p", en.Phase)
		e.f64("c", en.Confidence)
		e.bin("mt", en.Meta)
		e.bin("r", en.Result.Body)
		e.str("rs", en.Result.Subject)
		e.str("rc", en.Result.ContentType)
		e.str("ri", en.Result.ReqID)
		e.i64("tm", en.Time)
		e.i64("x", en.Expires)
		if en.Created != nil {
			e.check(enc.EncodeString("cf"))
			e.config(en.Created)
		}
	}
	return e.done()
}

// journalWriter publishes records.
type journalWriter struct {
	js      jetstream.JetStream
	subject string
	partMax int
	fence   func(nats.Header) // adds the partition's fence check
	futs    []jetstream.PubAckFuture
}

// write publishes data as one record and waits until the stream has stored
// all of it; it returns the sequences of the first and last parts.
func (w *journalWriter) write(ctx context.Context, data []byte) (first, last uint64, err error) {
	parts := max(1, (len(data)+w.partMax-1)/w.partMax)
	w.futs = w.futs[:0]
	for i := range parts {
		chunk := data[i*w.partMax : min(len(data), (i+1)*w.partMax)]
		// A message of its own per part: nats.go keeps it until the ack,
		// and sends it again on a retry.
		msg := &nats.Msg{Subject: w.subject, Data: chunk, Header: nats.Header{hdrPart: {strconv.Itoa(i+1) + "/" + strconv.Itoa(parts)}}}
		if w.fence != nil {
			w.fence(msg.Header)
		}
		f, err := w.js.PublishMsgAsync(msg)
		if err != nil {
			return 0, 0, fmt.Errorf("processor: journal: %w", err)
		}
		w.futs = append(w.futs, f)
		if parts > 1 {
			// A clustered stream refuses a second message in flight with the
			// same fence check: the parts of a long record go one by one.
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return 0, 0, fmt.Errorf("processor: journal: %w", err)
			case <-ctx.Done():
				return 0, 0, fmt.Errorf("processor: journal: %w", ctx.Err())
			}
		}
	}
	for i, f := range w.futs {
		select {
		case ack := <-f.Ok():
			if i == 0 {
				first = ack.Sequence
			}
			last = ack.Sequence
		case err := <-f.Err():
			return 0, 0, fmt.Errorf("processor: journal: %w", err)
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("processor: journal: %w", ctx.Err())
		}
	}
	return first, last, nil
}

// parsePart reads a Pelm-Part header.
func parsePart(h string) (i, n int, ok bool) {
	a, b, found := strings.Cut(h, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	return i, n, err1 == nil && err2 == nil && i >= 1 && i <= n
}

// doneEntry is the result of an effectful request, kept for replays until
// its request is confirmed gone and no stale copy of it can come back.
type doneEntry struct {
	Result
	seq       uint64
	rec       *heldRecord // the journal record that holds it durably
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
			err = st.Purge(ctx, jetstream.WithPurgeSubject(s.part.journal), jetstream.WithPurgeSequence(keep))
		}
		if err != nil {
			s.log.Warn().Err(err).Uint64("below", keep).Msg("purge journal; a later purge will cover it")
		}
	})
}
