package durable

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/wire"
	"github.com/rs/zerolog"
)

// Config configures a Store. Zero values mean the documented defaults.
type Config struct {
	Prefix string // subject prefix; "" means wire.DefaultPrefix

	// RetireAfter is how many more pulled messages a confirmed result is
	// kept for (a stale copy of its request may still sit in the pull
	// buffer): the processor's prefetch, at least. 0 means 1024.
	RetireAfter int

	// MaterializeEvery is how old the open epoch may grow before it is
	// sealed and committed to the per-item state; 0 means 1s. Tests set it
	// high so that only size seals.
	MaterializeEvery time.Duration

	// Replicas is the replica count of the streams Setup creates; 0
	// means 1. Streams that exist are used as they are.
	Replicas int

	Logger zerolog.Logger // zero value: no logging

	// Partition is the partition of the memories this store keeps: its
	// journal, commit mark, recovery marker and fences are its own.
	Partition int
	// Owns reports whether a memory belongs to the partition; Restore
	// reads only those. Nil: every memory.
	Owns func(memory string) bool
	// Valid reports whether the process still holds its lease on the
	// partition. It guards the writes the server cannot fence (purges).
	// Nil: always.
	Valid func() bool
}

// Store is the durable side of the batch loop: the journal, the
// materialised per-item state, the results kept for replays, ack
// confirmation and purging, restore, and the recovery marker. One
// goroutine (the batch loop) calls its methods; purges run on goroutines
// of its own, which Close waits for.
type Store struct {
	cfg  Config
	nc   *nats.Conn
	js   jetstream.JetStream
	log  zerolog.Logger
	subj stateSubjects
	part partitionSubjects

	fence  fence       // what every write of the partition checks
	fenced atomic.Bool // the server refused a write: another process fenced the partition

	journal journalWriter
	jenc    recordEncoder
	vecs    [][]byte // per entry of the batch being appended: its vector, little-endian

	done     map[uint64]*doneEntry // results of effectful requests not yet retired
	freeDone []*doneEntry          // retired, for reuse
	retiring []retiring            // confirmed, kept until no stale copy can come
	consumed uint64                // messages pulled so far
	acked    []ackedSeq            // acknowledged, until the requests stream confirms it
	checked  time.Time             // when confirmAcks last asked the stream

	jrecs   []*heldRecord // journal records not yet purged, oldest first
	matMark journalMark   // the per-item state holds everything before it
	mat     materializer
	rec     recordEncoder // state records
	item    itemRecord    // scratch

	purgeTo, purged uint64      // journal sequences below purgeTo may go; below purged a purge was sent
	purging         atomic.Bool // a purge runs
	purges          sync.WaitGroup

	failures atomic.Uint64 // materialising commits that failed
}

// New returns a Store on nc and js. It does not touch the server until
// Setup.
func New(nc *nats.Conn, js jetstream.JetStream, cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultPrefix
	}
	if cfg.RetireAfter == 0 {
		cfg.RetireAfter = 1024
	}
	if cfg.MaterializeEvery == 0 {
		cfg.MaterializeEvery = materializeEvery
	}
	s := &Store{
		cfg: cfg, nc: nc, js: js, log: cfg.Logger,
		subj: stateSubjects{base: cfg.Prefix + ".state."},
		part: newPartitionSubjects(cfg.Prefix, cfg.Partition),
		done: map[uint64]*doneEntry{},
	}
	s.journal = journalWriter{js: js, subject: s.part.journal, partMax: int(nc.MaxPayload()) - 1024, fence: s.journalFenced}
	s.mat = materializer{every: cfg.MaterializeEvery, open: &epoch{}}
	s.mat.committer = committer{nc: nc, subj: s.subj, commitSubject: s.part.commit, fence: s.stateFenced}
	return s
}

// Setup creates the state and journal streams when they are missing, and
// uses them as they are when they exist.
func (s *Store) Setup(ctx context.Context) error {
	for _, sc := range []jetstream.StreamConfig{stateStreamConfig(s.cfg.Prefix), journalStreamConfig(s.cfg.Prefix)} {
		sc.Replicas = max(1, s.cfg.Replicas)
		if st, err := s.js.Stream(ctx, sc.Name); err == nil {
			if err := addSubjects(ctx, s.js, st, sc.Subjects); err != nil {
				return fmt.Errorf("durable: stream %s: %w", sc.Name, err)
			}
			continue
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("durable: stream %s: %w", sc.Name, err)
		}
		if _, err := s.js.CreateStream(ctx, sc); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("durable: create stream %s: %w", sc.Name, err)
		}
		s.log.Info().Str("stream", sc.Name).Msg("stream created")
	}
	// Versions before the journal kept results as done records in the state
	// stream; nothing reads them any more.
	st, err := s.js.Stream(ctx, StateStream)
	if err == nil {
		err = st.Purge(ctx, jetstream.WithPurgeSubject(s.subj.legacyDone()))
	}
	if err != nil {
		return fmt.Errorf("durable: purge old done records: %w", err)
	}
	return nil
}

// Kind is what an effectful request did to its memory's items.
type Kind uint8

// The kinds of Entry.
const (
	KindNone   Kind = 0 // the filter decided (and perhaps refused): no item changed
	KindStore  Kind = 1
	KindForget Kind = 2
	KindDrop   Kind = 3 // the memory and everything in it is deleted
)

// Entry is one effectful request of a batch: one that went through its
// memory's filter or forgot an item. A redelivery of it must replay its
// result, never run again.
type Entry struct {
	Seq    uint64 // the request's stream sequence
	Memory string

	Decided bool         // the filter decided: Filter is its state after
	Filter  filter.State //

	Kind       Kind
	ID         string    // the item stored or forgotten
	Vector     []float32 // a store's vector as the request sent it
	Phase      float64
	Confidence float64
	Meta       []byte // tagged (wire.MetaTag)

	Time    int64 // the request's stream time, Unix ns
	Expires int64 // a store's expiry, Unix ns; 0: never

	Evicted    string // the item a store evicted, if HasEvicted
	HasEvicted bool
	Found      bool     // a forget found its item
	Expired    []string // items that expired as the request ran (set by Applier.Replay)

	// Created is set when the request created its memory (a create, or
	// the first store or process of a memory), with the memory's settings.
	Created *wire.MemoryConfig

	Result Result
}

// Result is the result of an effectful request as it was published, kept
// until its request is confirmed gone so that a redelivery republishes it
// byte for byte.
type Result struct {
	Subject     string
	ContentType string
	ReqID       string
	Body        []byte
}

// Append makes a batch's effects durable: one journal record holds every
// entry, in stream order, with its effects and its result. It returns once
// the journal has stored the record, or with an error (then nothing of the
// batch may be acknowledged, and the memories may hold effects that are
// not durable: restore them). The entries' item changes are then queued
// for materialising, which does not hold up the caller.
func (s *Store) Append(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if s.fenced.Load() {
		return ErrFenced
	}
	first, last, err := s.journal.write(ctx, s.encodeJournal(entries))
	if err != nil {
		return s.checkFenced(err)
	}
	rec := &heldRecord{first: first, last: last, entries: len(entries), unconfirmed: len(entries)}
	s.jrecs = append(s.jrecs, rec)
	for i := range entries {
		en := &entries[i]
		d := s.newDone()
		*d = doneEntry{seq: en.Seq, rec: rec, Result: Result{Subject: en.Result.Subject, ContentType: en.Result.ContentType,
			ReqID: en.Result.ReqID, Body: append(d.Body[:0], en.Result.Body...)}}
		s.done[en.Seq] = d
		s.queue(en, s.vecs[i], journalMark{Record: last, Entries: i + 1})
	}
	return nil
}

// Expired records that items of memory expired (PROTOCOL.md, Expiry), so
// that the per-item state drops them too. Expiry is a function of stream
// time, so it need not be journalled: a restore that reloads an item
// whose removal was lost expires it again.
func (s *Store) Expired(memory string, ids []string) {
	if len(ids) == 0 {
		return
	}
	e := s.mat.open
	if e.size()+len(ids) > maxAtomicBatch {
		s.seal()
		e = s.mat.open
	}
	if e.empty() {
		e.opened, e.mark = time.Now(), s.matMark
	}
	for _, id := range ids {
		e.tombstone(s.subj.item(memory, id))
	}
}

// Replay returns the stored result of request seq when its effects are
// durable: the request ran before and must not run again. The result is
// valid until the next Pulled.
func (s *Store) Replay(seq uint64) (*Result, bool) {
	if d, ok := s.done[seq]; ok {
		return &d.Result, true
	}
	return nil, false
}

// Acked records that request seq, effectful or replayed, was acknowledged
// at at. Its result is kept until the requests stream confirms it gone.
func (s *Store) Acked(seq uint64, at time.Time) {
	s.acked = append(s.acked, ackedSeq{seq: seq, at: at})
}

// Pulled counts n more messages pulled, forgets the results whose time has
// passed, and confirms acks when it is time to. Call it before a batch is
// looked up.
func (s *Store) Pulled(n int) {
	s.consumed += uint64(n)
	s.retireDone()
	s.confirmAcks(false)
}

// Tick moves the durable work along after a batch or while idle: ack
// confirmation (at most four times a second) and materialising. A failure
// is logged and retried on a later tick: the journal holds everything
// meanwhile.
func (s *Store) Tick() {
	s.confirmAcks(false)
	_ = s.materialize(false)
}

// Close brings the per-item state up to date and purges the journal behind
// it, so that the next start has little to replay, then waits for the
// purges. Call it once the last batch is acknowledged.
func (s *Store) Close() {
	s.confirmAcks(true)
	if err := s.materialize(true); err != nil {
		s.log.Warn().Err(err).Msg("materialise state; the next start replays the journal")
	}
	s.purges.Wait()
}

// Backlog is what waits behind the requests: journal records not yet
// purged and sealed epochs not yet materialised.
func (s *Store) Backlog() (records, epochs int) { return len(s.jrecs), len(s.mat.sealed) }

// Failures counts the commits to the per-item state that failed or went
// unanswered (each is retried). Safe to call from any goroutine.
func (s *Store) Failures() uint64 { return s.failures.Load() }

// SetMaterializeEvery changes Config.MaterializeEvery; for tests, before
// the first Append.
func (s *Store) SetMaterializeEvery(d time.Duration) { s.mat.every = d }

// addSubjects adds to an existing stream the subjects of want it lacks: a
// journal made by a version before partitions had one subject.
func addSubjects(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, want []string) error {
	cfg := st.CachedInfo().Config
	missing := false
	for _, w := range want {
		missing = missing || !slices.Contains(cfg.Subjects, w)
	}
	if !missing {
		return nil
	}
	for _, w := range want {
		if !slices.Contains(cfg.Subjects, w) {
			cfg.Subjects = append(cfg.Subjects, w)
		}
	}
	_, err := js.UpdateStream(ctx, cfg)
	return err
}
