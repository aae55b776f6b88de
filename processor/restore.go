package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/vmihailenco/msgpack/v5"
)

const restoreTimeout = 2 * time.Minute

// restoring gathers one memory's items while the state stream is read and
// feeds them to the memory in chunks, in the stream's order.
type restoring struct {
	m       *memory
	ops     []pelm.Op
	results []pelm.Result
}

const restoreChunk = 1024

func (r *restoring) flush() {
	if len(r.ops) == 0 {
		return
	}
	if cap(r.results) < len(r.ops) {
		r.results = make([]pelm.Result, len(r.ops))
	}
	r.m.mem.Apply(r.ops, r.results[:len(r.ops)])
	r.ops = r.ops[:0]
}

// RestoreInfo says what a restore rebuilt.
type RestoreInfo struct {
	Memories int
	Items    int // read from the per-item state
	Replayed int // journal entries applied on top of it
	Took     time.Duration
}

// Restore rebuilds every memory from the state stream, as Run does before
// it consumes. It is exported for tools and benchmarks; do not call it
// while Run is running.
func (p *Processor) Restore() (RestoreInfo, error) {
	err := p.restore()
	return p.restored, err
}

// restore rebuilds every memory, its filter and the unconfirmed results
// from the per-item state and the journal, replacing whatever the
// processor held.
func (p *Processor) restore() error {
	p.resetMaterializer()
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
	p.memories, p.order = map[string]*memory{}, nil
	p.done, p.pendingDelete, p.acked, p.retiring = map[uint64]*doneEntry{}, p.pendingDelete[:0], p.acked[:0], p.retiring[:0]
	p.jrecs, p.matMark = p.jrecs[:0], journalMark{}

	st, err := p.js.Stream(call(), StateStream)
	if err != nil {
		return fmt.Errorf("processor: restore: %w", err)
	}
	switch raw, err := st.GetLastMsgForSubject(call(), p.subj.commit()); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return fmt.Errorf("processor: restore: %w", err)
	default:
		var cr commitRecord
		if err := msgpack.Unmarshal(raw.Data, &cr); err != nil {
			return fmt.Errorf("processor: restore: commit marker: %w", err)
		}
		p.matMark = cr.Journal
	}
	mems := map[string]*restoring{}
	filters := map[string]filterRecord{}
	items := 0
	err = p.readStream(ctx, call, StateStream, p.subj.base+"m.>", func(msg jetstream.Msg) error {
		return p.restoreOne(msg, mems, filters, &items)
	})
	if err != nil {
		return err
	}
	for _, r := range mems {
		r.flush()
	}
	for name, rec := range filters {
		m, err := p.restoredMemory(name, mems)
		if err != nil {
			return err
		}
		m.filter.SetState(filter.State{Threshold: rec.Threshold, EMA: rec.EMA})
	}
	replayed, err := p.replayJournal(ctx, call, mems)
	if err != nil {
		return err
	}
	if err := p.forgetAckedDone(call()); err != nil {
		return err
	}
	p.purgeJournal()
	p.restored = RestoreInfo{Memories: len(p.order), Items: items, Replayed: replayed, Took: time.Since(start)}
	pending := 0
	for _, e := range p.done {
		if !e.confirmed {
			pending++
		}
	}
	p.log.Info().Int("memories", len(p.order)).Int("items", items).Int("replayed", replayed).
		Int("pending_results", pending).Dur("took", p.restored.Took).Msg("memories restored")
	return nil
}

// readStream passes every message of stream on subject filter to fn, in
// stream order.
func (p *Processor) readStream(ctx context.Context, call func() context.Context, stream, filter string, fn func(jetstream.Msg) error) error {
	st, err := p.js.Stream(call(), stream) // asks the server for the stream's info
	if err != nil {
		return fmt.Errorf("processor: restore: %w", err)
	}
	if st.CachedInfo().State.Msgs == 0 {
		return nil
	}
	cons, err := p.js.OrderedConsumer(call(), stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("processor: restore: %w", err)
	}
	// Ask for no more than what is pending, so that the last fetch does not
	// sit out its wait for messages that will never come.
	ci, err := cons.Info(call())
	if err != nil {
		return fmt.Errorf("processor: restore: %w", err)
	}
	pending, empty := ci.NumPending, 0
	for pending > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("processor: restore: %w", ctx.Err())
		}
		batch, err := cons.Fetch(int(min(pending, restoreChunk)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("processor: restore: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			if err := fn(msg); err != nil {
				return fmt.Errorf("processor: restore %s: %w", msg.Subject(), err)
			}
			if md, err := msg.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("processor: restore: %w", err)
		}
		if n > 0 {
			empty = 0
			continue
		}
		// Messages are pending but none came: a restore that stopped here
		// would silently lose state. Try again, then give up with an error.
		if empty++; empty == 3 {
			return fmt.Errorf("processor: restore of %s incomplete: %d messages pending, none delivered", stream, pending)
		}
	}
	return nil
}

func (p *Processor) restoreOne(msg jetstream.Msg, mems map[string]*restoring, filters map[string]filterRecord, items *int) error {
	mem, kind, key, ok := p.subj.parse(msg.Subject())
	if !ok || msg.Headers().Get(hdrOp) == opDelete {
		return nil
	}
	switch kind {
	case 'i':
		var rec itemRecord
		if err := msgpack.Unmarshal(msg.Data(), &rec); err != nil {
			return err
		}
		vec, err := vectorFrom(rec.Vector, p.dim)
		if err != nil {
			return fmt.Errorf("memory %q was stored with another dimension than --dim %d: %w", mem, p.dim, err)
		}
		m, err := p.restoredMemory(mem, mems)
		if err != nil {
			return err
		}
		r := mems[m.name]
		r.ops = append(r.ops, pelm.Op{Kind: pelm.OpStore, ID: rec.ID, Vector: vec, Phase: rec.Phase, Confidence: rec.Confidence, Meta: rec.Meta})
		if len(r.ops) == restoreChunk {
			r.flush()
		}
		*items++
	case 'f':
		var rec filterRecord
		if err := msgpack.Unmarshal(msg.Data(), &rec); err != nil {
			return err
		}
		filters[mem] = rec
	case 'd':
		seq, err := strconv.ParseUint(key, 10, 64)
		if err != nil {
			return err
		}
		h := msg.Headers()
		p.done[seq] = &doneEntry{seq: seq, memory: mem, subject: h.Get(hdrSubject), ctype: h.Get(HeaderContentType), reqID: h.Get(HeaderRequestID),
			body: append([]byte(nil), msg.Data()...)}
	}
	return nil
}

// restoredMemory returns the memory being restored, creating it (past the
// --max-memories limit if it must: what is durable is never dropped).
func (p *Processor) restoredMemory(name string, mems map[string]*restoring) (*memory, error) {
	if r, ok := mems[name]; ok {
		return r.m, nil
	}
	m, err := p.newMemory(name)
	if err != nil {
		return nil, err
	}
	mems[name] = &restoring{m: m}
	return m, nil
}

// forgetAckedDone drops the results of requests that are no longer in the
// requests stream: they were acknowledged, only the result's removal did
// not happen. Requests below the stream's first sequence are gone; the few
// above it are looked up one by one.
func (p *Processor) forgetAckedDone(ctx context.Context) error {
	if len(p.done) == 0 {
		return nil
	}
	st, first, err := p.requestsFloor(ctx)
	if err != nil {
		return fmt.Errorf("processor: restore: %w", err)
	}
	for seq := range p.done {
		if seq >= first {
			_, err := st.GetMsg(ctx, seq)
			switch {
			case err == nil:
				continue
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				return fmt.Errorf("processor: restore: request %d: %w", seq, err)
			}
		}
		p.confirmed(seq)
	}
	return nil
}

// MemorySnapshot is a copy of one memory: its items, oldest first (stored
// vectors are unit length), and its filter's state.
type MemorySnapshot struct {
	Items  []pelm.Item
	Filter filter.State
}

// Snapshot copies every memory. Use it after Restore or after Run has
// returned, never while Run runs: the batch loop owns the memories.
func (p *Processor) Snapshot() map[string]MemorySnapshot {
	out := make(map[string]MemorySnapshot, len(p.order))
	for _, m := range p.order {
		var snap MemorySnapshot
		for it := range m.mem.Items {
			it.Vector = append([]float32(nil), it.Vector...)
			snap.Items = append(snap.Items, it)
		}
		snap.Filter = m.filter.State()
		out[m.name] = snap
	}
	return out
}
