package durable

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

const restoreTimeout = 2 * time.Minute

// Applier is what a restore rebuilds: the memories of the batch loop.
type Applier interface {
	// Reset drops every memory: a restore starts from nothing.
	Reset()
	// Create makes an empty memory with the given settings (a restore
	// calls it for every memory whose settings the state holds, before
	// anything else of the memory).
	Create(memory string, cfg wire.MemoryConfig) error
	// Load stores items into memory, oldest first, creating the memory
	// with the server's defaults when it does not exist (a memory of a
	// version that kept no settings).
	// It returns the ids of the items that expired as they were loaded.
	Load(memory string, items []Item) (expired []string, err error)
	// SetFilter sets memory's filter state, creating the memory first when
	// it does not exist.
	SetFilter(memory string, st filter.State) error
	// Replay runs one journalled request's effect on memory again: it
	// creates the memory first when e.Created is set, deletes it for a
	// KindDrop, runs a store or a forget and sets the filter's state after
	// it when e.Decided, and sets e.Evicted, e.HasEvicted and e.Found to
	// what it did.
	Replay(memory string, e *Entry) error
}

// Item is one stored item as the per-item state holds it, with its vector
// as the request sent it.
type Item struct {
	ID         string
	Vector     []float32
	Phase      float64
	Confidence float64
	Meta       []byte // tagged (wire.MetaTag)
	Seq        uint64 // the request that stored it
	Time       int64  // the memory's clock when it was stored, Unix ns
	Expires    int64  // when it expires, Unix ns; 0: never
}

// Info says what a restore rebuilt.
type Info struct {
	Items    int // read from the per-item state
	Replayed int // journal entries replayed on top of it
	Pending  int // results kept for requests that may come back
	Took     time.Duration
}

// restoreChunk is how many items are loaded into a memory at once.
const restoreChunk = 1024

// fetchStall bounds one fetch of a restore, beyond its own max wait.
const fetchStall = 15 * time.Second

// Restore rebuilds every memory, its filter and the results kept for
// replays from the per-item state and the journal, replacing whatever a
// and the Store held. The batch loop calls it before it consumes, and again
// after a failed Append (the memories may then hold effects that are not
// durable).
func (s *Store) Restore(a Applier) (Info, error) {
	s.resetMaterializer()
	// Each call gets a short deadline of its own: right after a NATS server
	// restart an API request can go unanswered, and the batch loop must
	// fail fast and try again rather than wait out the whole restore.
	ctx, cancel := context.WithTimeout(context.Background(), restoreTimeout)
	defer cancel()
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	call := func() context.Context {
		c, cancel := context.WithTimeout(ctx, apiTimeout)
		cancels = append(cancels, cancel)
		return c
	}
	start := time.Now()
	a.Reset()
	s.done, s.acked, s.retiring = map[uint64]*doneEntry{}, s.acked[:0], s.retiring[:0]
	s.jrecs, s.matMark = s.jrecs[:0], journalMark{}

	st, err := s.js.Stream(call(), StateStream)
	if err != nil {
		return Info{}, fmt.Errorf("durable: restore: %w", err)
	}
	switch raw, err := st.GetLastMsgForSubject(call(), s.part.commit); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return Info{}, fmt.Errorf("durable: restore: %w", err)
	default:
		var cr commitRecord
		if err := msgpack.Unmarshal(raw.Data, &cr); err != nil {
			return Info{}, fmt.Errorf("durable: restore: commit marker: %w", err)
		}
		s.matMark = cr.Journal
	}
	// The memories' settings first: a settings record is written once per
	// memory, but stream order could put it behind the memory's items.
	err = s.readStream(ctx, call, StateStream, []string{s.subj.base + "m.*.c"}, func(msg jetstream.Msg) error {
		mem, kind, _, ok := s.subj.parse(msg.Subject())
		if !ok || kind != 'c' || !s.owns(mem) {
			return nil
		}
		var cfg wire.MemoryConfig
		if err := msgpack.Unmarshal(msg.Data(), &cfg); err != nil {
			return err
		}
		return a.Create(mem, cfg)
	})
	if err != nil {
		return Info{}, err
	}
	pending := map[string][]Item{} // per memory, loaded a chunk at a time
	var order []string             // memories in the order they were first seen
	filters := map[string]filterRecord{}
	items := 0
	mems, err := s.partitionMemories(call(), st)
	if err != nil {
		return Info{}, err
	}
	err = s.readStream(ctx, call, StateStream, mems, func(msg jetstream.Msg) error {
		mem, kind, _, ok := s.subj.parse(msg.Subject())
		if !ok || msg.Headers().Get(hdrOp) == opDelete {
			return nil
		}
		switch kind {
		case 'i':
			var rec itemRecord
			if err := msgpack.Unmarshal(msg.Data(), &rec); err != nil {
				return err
			}
			if _, seen := pending[mem]; !seen {
				order = append(order, mem)
			}
			pending[mem] = append(pending[mem], Item{ID: rec.ID, Vector: vectorFrom(rec.Vector), Phase: rec.Phase,
				Confidence: rec.Confidence, Meta: rec.Meta, Seq: rec.Seq, Time: rec.Time, Expires: rec.Expires})
			items++
			if len(pending[mem]) == restoreChunk {
				expired, err := a.Load(mem, pending[mem])
				if err != nil {
					return err
				}
				s.Expired(mem, expired)
				pending[mem] = pending[mem][:0]
			}
		case 'f':
			var rec filterRecord
			if err := msgpack.Unmarshal(msg.Data(), &rec); err != nil {
				return err
			}
			filters[mem] = rec
		}
		return nil
	})
	if err != nil {
		return Info{}, err
	}
	for _, mem := range order {
		expired, err := a.Load(mem, pending[mem])
		if err != nil {
			return Info{}, fmt.Errorf("durable: restore memory %q: %w", mem, err)
		}
		s.Expired(mem, expired)
	}
	for mem, rec := range filters {
		if err := a.SetFilter(mem, filter.State{Threshold: rec.Threshold, EMA: rec.EMA}); err != nil {
			return Info{}, fmt.Errorf("durable: restore memory %q: %w", mem, err)
		}
	}
	replayed, err := s.replayJournal(ctx, call, a)
	if err != nil {
		return Info{}, err
	}
	if err := s.forgetAckedDone(call()); err != nil {
		return Info{}, err
	}
	s.purgeJournal()
	info := Info{Items: items, Replayed: replayed, Took: time.Since(start)}
	for _, e := range s.done {
		if !e.confirmed {
			info.Pending++
		}
	}
	return info, nil
}

// replayJournal reads the journal back: the results of every record still
// there, and the effects of the entries past the materialised mark, which
// it replays on the memories (restored from the per-item state up to that
// mark) and queues for materialising again. It returns how many entries
// it replayed.
func (s *Store) replayJournal(ctx context.Context, call func() context.Context, a Applier) (int, error) {
	var (
		buf      []byte
		want     = 1 // the part expected next
		first    uint64
		replayed int
	)
	err := s.readStream(ctx, call, JournalStream, []string{s.journal.subject}, func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		i, n, ok := parsePart(msg.Headers().Get(hdrPart))
		if !ok {
			return fmt.Errorf("journal message %d: bad %s header %q", md.Sequence.Stream, hdrPart, msg.Headers().Get(hdrPart))
		}
		if i != want {
			// The rest of a record cut short by a crash: its requests were
			// never acknowledged and come back. Start afresh at a first part.
			buf, want = buf[:0], 1
			if i != 1 {
				return nil
			}
		}
		if i == 1 {
			buf, first = buf[:0], md.Sequence.Stream
		}
		buf = append(buf, msg.Data()...)
		if i < n {
			want = i + 1
			return nil
		}
		want = 1
		var rec journalRecord
		if err := msgpack.Unmarshal(buf, &rec); err != nil {
			return fmt.Errorf("journal record at %d: %w", first, err)
		}
		k, err := s.replayRecord(&rec, first, md.Sequence.Stream, a)
		replayed += k
		return err
	})
	return replayed, err
}

// replayRecord restores one journal record.
func (s *Store) replayRecord(rec *journalRecord, first, last uint64, a Applier) (int, error) {
	jr := &heldRecord{first: first, last: last, entries: len(rec.Entries)}
	s.jrecs = append(s.jrecs, jr)
	replayed := 0
	for i := range rec.Entries {
		je := &rec.Entries[i]
		s.done[je.Seq] = &doneEntry{seq: je.Seq, rec: jr, Result: Result{Subject: je.Subject, ContentType: je.CType, ReqID: je.ReqID, Body: je.Result}}
		jr.unconfirmed++
		if s.matMark.covers(last, i) {
			continue
		}
		en := Entry{Seq: je.Seq, Memory: je.Memory, Decided: je.Decided, Filter: filter.State{Threshold: je.Threshold, EMA: je.EMA},
			Kind: Kind(je.Kind), ID: je.ID, Phase: je.Phase, Confidence: je.Confidence, Meta: je.Meta, Created: je.Created,
			Time: je.Time, Expires: je.Expires}
		if en.Kind == KindStore {
			en.Vector = vectorFrom(je.Vector)
		}
		if err := a.Replay(je.Memory, &en); err != nil {
			return replayed, fmt.Errorf("journal entry of request %d: %w", je.Seq, err)
		}
		s.queue(&en, je.Vector, journalMark{Record: last, Entries: i + 1})
		replayed++
	}
	return replayed, nil
}

// readStream passes every message of stream on subject filter to fn, in
// stream order.
func (s *Store) readStream(ctx context.Context, call func() context.Context, stream string, filters []string, fn func(jetstream.Msg) error) error {
	if len(filters) == 0 {
		return nil
	}
	st, err := s.js.Stream(call(), stream) // asks the server for the stream's info
	if err != nil {
		return fmt.Errorf("durable: restore: %w", err)
	}
	if st.CachedInfo().State.Msgs == 0 {
		return nil
	}
	cons, err := s.js.OrderedConsumer(call(), stream, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		return fmt.Errorf("durable: restore: %w", err)
	}
	// Ask for no more than what is pending, so that the last fetch does not
	// sit out its wait for messages that will never come.
	ci, err := cons.Info(call())
	if err != nil {
		return fmt.Errorf("durable: restore: %w", err)
	}
	pending, empty := ci.NumPending, 0
	for pending > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("durable: restore: %w", ctx.Err())
		}
		batch, err := cons.Fetch(int(min(pending, restoreChunk)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("durable: restore: %w", err)
		}
		n := 0
		// A fetch whose connection drops under it may never close its
		// channel: give up on it after a while, and the caller tries again.
		stall := time.NewTimer(fetchStall)
		msgs := batch.Messages()
	read:
		for {
			select {
			case msg, ok := <-msgs:
				if !ok {
					break read
				}
				n++
				if err := fn(msg); err != nil {
					stall.Stop()
					return fmt.Errorf("durable: restore %s: %w", msg.Subject(), err)
				}
				if md, err := msg.Metadata(); err == nil {
					pending = md.NumPending
				}
			case <-stall.C:
				return fmt.Errorf("durable: restore of %s: a fetch stalled for %v", stream, fetchStall)
			case <-ctx.Done():
				stall.Stop()
				return fmt.Errorf("durable: restore: %w", ctx.Err())
			}
		}
		stall.Stop()
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("durable: restore: %w", err)
		}
		if n > 0 {
			empty = 0
			continue
		}
		// Messages are pending but none came: a restore that stopped here
		// would silently lose state. Try again, then give up with an error.
		if empty++; empty == 3 {
			return fmt.Errorf("durable: restore of %s incomplete: %d messages pending, none delivered", stream, pending)
		}
	}
	return nil
}

// forgetAckedDone drops the results of requests that are no longer in the
// requests stream: they were acknowledged, only the result's removal did
// not happen. Requests below the stream's first sequence are gone; the few
// above it are looked up one by one.
func (s *Store) forgetAckedDone(ctx context.Context) error {
	if len(s.done) == 0 {
		return nil
	}
	st, first, err := s.requestsFloor(ctx)
	if err != nil {
		return fmt.Errorf("durable: restore: %w", err)
	}
	for seq := range s.done {
		if seq >= first {
			_, err := st.GetMsg(ctx, seq)
			switch {
			case err == nil:
				continue
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				return fmt.Errorf("durable: restore: request %d: %w", seq, err)
			}
		}
		s.confirmed(seq)
	}
	return nil
}

// partitionMemories returns the subject filters of the partition's
// memories in the state stream: every memory with settings or a filter
// record (a memory with items has both) that the partition owns.
func (s *Store) partitionMemories(ctx context.Context, st jetstream.Stream) ([]string, error) {
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.subj.base+"m.*.*"))
	if err != nil {
		return nil, fmt.Errorf("durable: restore: list memories: %w", err)
	}
	seen := map[string]bool{}
	var filters []string
	for subj := range info.State.Subjects {
		mem, kind, _, ok := s.subj.parse(subj)
		if !ok || (kind != 'c' && kind != 'f') || seen[mem] || !s.owns(mem) {
			continue
		}
		seen[mem] = true
		filters = append(filters, s.subj.memory(mem))
	}
	slices.Sort(filters)
	return filters, nil
}
